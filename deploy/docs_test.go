package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsStandAlone: the repository cites its own specifications (docs/specs/), never files
// outside it, and every relative link of its Markdown resolves to a file that exists.
func TestDocsStandAlone(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	outside := regexp.MustCompile(`\.\./shared|shared/specs|/work/shared|\.\./seeds`)
	bare := regexp.MustCompile(`(^|[^\w/.-])(platforms|contract|kafka-go)\.md`)
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".cache", ".run", "bin", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml", ".sh", ".json":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(b)
		checked++
		if rel == filepath.Join("deploy", "docs_test.go") {
			return nil // the patterns themselves
		}
		for i, line := range strings.Split(text, "\n") {
			if outside.MatchString(line) {
				t.Errorf("%s:%d cites a file outside the repository: %s", rel, i+1, strings.TrimSpace(line))
			}
			if !strings.HasPrefix(rel, filepath.Join("docs", "specs")) && bare.MatchString(line) {
				t.Errorf("%s:%d cites a specification without its path (docs/specs/...): %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		if filepath.Ext(path) != ".md" {
			return nil
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
				t.Errorf("%s: link %s does not resolve", rel, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"docs/specs/contract.md", "docs/specs/platforms.md", "docs/specs/kafka-go.md", "docs/architecture.md", "docs/performance.md"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("%s is missing", f)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d files checked", checked)
	}
}
