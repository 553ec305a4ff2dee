package kafkaio_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// forbidden are the ways to reach Kafka without the connection settings (TLS, SASL) of a
// kafkaio.Conn: kafka-go's own constructors, and kafkaio's plaintext helpers that take bare
// broker addresses (kept for tests against the plaintext test broker).
var forbiddenKafka = map[string]map[string]bool{
	"github.com/segmentio/kafka-go": {
		"NewReader": true, "NewReaderConfig": true, "Dial": true, "DialContext": true, "DialLeader": true,
		"DialPartition": true, "NewConn": true, "NewConnWith": true, "NewClient": true,
		"Writer": true, "Client": true, "Transport": true, "Dialer": true, "DefaultDialer": true,
		"DefaultTransport": true,
	},
	"github.com/orderpipe/pipeline/plumbing/kafkaio": {
		"NewWriter": true, "NewReader": true, "NewTransport": true, "EnsureTopics": true, "Ping": true,
		"GroupLag": true, "WatchLag": true, "NewProducer": true,
	},
}

// types are flagged only where a value is built (a composite literal or new), not where the
// type is named (a *kafka.Writer parameter is fine); vars wherever they are used.
var (
	types = map[string]bool{"Writer": true, "Client": true, "Transport": true, "Dialer": true}
	vars  = map[string]bool{"DefaultDialer": true, "DefaultTransport": true}
)

// allowedDirs may build kafka-go values themselves: the constructor, and the test gate that
// points tests at the plaintext test broker.
var allowedDirs = []string{"plumbing/kafkaio", "plumbing/testenv"}

// TestNothingDialsKafkaAroundConn scans every module's non-test Go files: outside plumbing/kafkaio
// nothing may build a kafka-go reader, writer, client, transport, dialer or connection itself, or
// use kafkaio's bare-brokers helpers; everything goes through a kafkaio.Conn, so TLS and SASL
// cannot be forgotten by one component.
func TestNothingDialsKafkaAroundConn(t *testing.T) {
	for _, f := range scanRepo(t, forbiddenKafka, allowedDirs) {
		t.Errorf("dials Kafka around kafkaio.Conn: %s", f)
	}
}

// TestNothingBuildsRedisClientsAroundRedisio: the one Redis constructor is plumbing/redisio, so
// the mode (single, Sentinel, Cluster), ACL credentials, TLS and timeouts are the same for every
// service; nothing else calls go-redis's constructors.
func TestNothingBuildsRedisClientsAroundRedisio(t *testing.T) {
	redisCtors := map[string]map[string]bool{"github.com/redis/go-redis/v9": {
		"NewClient": true, "NewUniversalClient": true, "NewFailoverClient": true, "NewFailoverClusterClient": true,
		"NewClusterClient": true, "NewRing": true, "NewSentinelClient": true,
	}}
	for _, f := range scanRepo(t, redisCtors, []string{"plumbing/redisio", "plumbing/testenv"}) {
		t.Errorf("builds a Redis client around redisio: %s", f)
	}
}

// scanRepo returns every use of a forbidden name in the non-test Go files of every module,
// outside the allowed directories.
func scanRepo(t *testing.T, forbidden map[string]map[string]bool, allowedDirs []string) []string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			for _, a := range allowedDirs {
				if rel == a {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		found = append(found, scanFile(t, root, path, forbidden)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	return found
}

// scanFile reports every selector X.Name in path where X is an import of a forbidden package.
func scanFile(t *testing.T, root, path string, forbidden map[string]map[string]bool) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	names := map[string]string{} // local import name -> import path
	for _, im := range f.Imports {
		p := strings.Trim(im.Path.Value, `"`)
		if forbidden[p] == nil {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		switch p {
		case "github.com/segmentio/kafka-go":
			name = "kafka"
		case "github.com/redis/go-redis/v9":
			name = "redis"
		}
		if im.Name != nil {
			name = im.Name.Name
		}
		names[name] = p
	}
	if len(names) == 0 {
		return nil
	}
	var out []string
	report := func(sel *ast.SelectorExpr) {
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return
		}
		if p, ok := names[x.Name]; ok && forbidden[p][sel.Sel.Name] {
			pos := fset.Position(sel.Pos())
			rel, _ := filepath.Rel(root, pos.Filename)
			out = append(out, rel+":"+strconv.Itoa(pos.Line)+": "+x.Name+"."+sel.Sel.Name)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit: // kafka.Writer{…}, &kafka.Transport{…}
			if sel, ok := n.Type.(*ast.SelectorExpr); ok {
				report(sel)
			}
		case *ast.CallExpr: // kafka.NewReader(…), new(kafka.Dialer)
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && !types[sel.Sel.Name] {
				report(sel)
			}
			if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "new" && len(n.Args) == 1 {
				if sel, ok := n.Args[0].(*ast.SelectorExpr); ok {
					report(sel)
				}
			}
		case *ast.SelectorExpr: // kafka.DefaultDialer, a function passed as a value
			if vars[n.Sel.Name] {
				report(n)
			}
		}
		return true
	})
	return out
}
