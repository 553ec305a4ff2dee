package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocsStandAlone: the repository cites its own specifications (docs/specs/), never files
// outside it, and every relative link of its Markdown resolves to a file that exists, and to a
// heading of it when the link names one (#anchor, as GitHub makes them from the heading).
func TestDocsStandAlone(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	outside := regexp.MustCompile(`\.\./shared|shared/specs|/work/shared|\.\./seeds`)
	bare := regexp.MustCompile(`(^|[^\w/.-])(platforms|contract|kafka-go)\.md`)
	link := regexp.MustCompile(`\]\(([^)#\s]*)(#[^)\s]*)?\)`)
	checked := 0
	anchors := map[string]map[string]bool{} // a Markdown file's heading anchors, read once
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
			file := filepath.Join(filepath.Dir(path), target)
			if target == "" {
				file = path // "(#anchor)": a heading of this file
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %s does not resolve", rel, target)
				continue
			}
			if anchor := strings.TrimPrefix(m[2], "#"); anchor != "" && filepath.Ext(file) == ".md" {
				heads, ok := anchors[file]
				if !ok {
					if heads, err = headingAnchors(file); err != nil {
						return err
					}
					anchors[file] = heads
				}
				if !heads[anchor] {
					t.Errorf("%s: link %s#%s names no heading of %s", rel, target, anchor, filepath.Base(file))
				}
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

// headingAnchors returns the anchors GitHub gives the headings of a Markdown file: the heading's
// text in lower case, without anything but letters, digits, '_', '-' and spaces, its spaces
// turned into '-', and "-1", "-2" … after a repeated one. Fenced code is skipped.
func headingAnchors(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, seen, fenced := map[string]bool{}, map[string]int{}, false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		text, ok := strings.CutPrefix(line[level:], " ")
		if level == 0 || level > 6 || !ok {
			continue
		}
		var a strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				a.WriteRune(r)
			}
		}
		anchor := a.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor]++
			anchor += "-" + strconv.Itoa(n)
		} else {
			seen[anchor] = 1
		}
		out[anchor] = true
	}
	return out, nil
}
