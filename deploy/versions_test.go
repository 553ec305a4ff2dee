package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleVersionsMatchWorkspace: every module's go.mod requires exactly the version the
// workspace selects. Tests run in workspace mode (go.work); the images build in workspace mode
// too, and `go install`/GOWORK=off builds use each go.mod alone, so a go.mod that lags the
// workspace would ship a version no test ran (e.g. the normalizer tested with go-redis v9.23.0
// but built with v9.17.3). Fix a failure with `make tidy` (go mod tidy + go work sync).
func TestModuleVersionsMatchWorkspace(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to read the workspace's build list")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	list := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Version}}", "all")
	list.Dir = root
	list.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=-mod=readonly")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -m all in the workspace: %v", errText(err))
	}
	selected := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, version, _ := strings.Cut(sc.Text(), " ")
		selected[path] = version
	}

	edit := exec.Command("go", "work", "edit", "-json")
	edit.Dir = root
	wj, err := edit.Output()
	if err != nil {
		t.Fatalf("go work edit -json: %v", errText(err))
	}
	var work struct{ Use []struct{ DiskPath string } }
	if err := json.Unmarshal(wj, &work); err != nil {
		t.Fatal(err)
	}
	if len(work.Use) < 8 {
		t.Fatalf("go.work uses %d modules", len(work.Use))
	}
	checked := 0
	for _, u := range work.Use {
		gomod := filepath.Join(root, u.DiskPath, "go.mod")
		cmd := exec.Command("go", "mod", "edit", "-json", gomod)
		mj, err := cmd.Output()
		if err != nil {
			t.Fatalf("go mod edit -json %s: %v", gomod, errText(err))
		}
		var mod struct {
			Require []struct{ Path, Version string }
			Replace []struct{ Old struct{ Path string } }
		}
		if err := json.Unmarshal(mj, &mod); err != nil {
			t.Fatal(err)
		}
		replaced := map[string]bool{}
		for _, r := range mod.Replace {
			replaced[r.Old.Path] = true
		}
		for _, r := range mod.Require {
			if replaced[r.Path] {
				continue // the workspace's own modules
			}
			checked++
			if sel := selected[r.Path]; sel != r.Version {
				t.Errorf("%s requires %s %s; the workspace (and so every test) uses %s", filepath.Join(u.DiskPath, "go.mod"), r.Path, r.Version, sel)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d requirements checked", checked)
	}
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}
