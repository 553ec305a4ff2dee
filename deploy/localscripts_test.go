package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRedisInstallConcurrent: testenv.sh starts nine Redis nodes at once, and on a machine
// without redis-server each of them installs it. apt-get refuses to run beside another apt-get
// ("Could not get lock"), so the installs must take turns: every start succeeds, and
// redis-server is installed once. Run against a stand-in apt-get that refuses exactly as apt
// does, on a PATH that holds only what redis.sh install needs (no redis-server).
func TestRedisInstallConcurrent(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"bash", "dirname", "id", "flock", "sleep", "mkdir", "rmdir", "chmod", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	aptGet := fmt.Sprintf(`#!/bin/bash
# apt-get as far as locking goes: one at a time, the others refused at once.
mkdir %[1]s/apt.lock 2>/dev/null || { echo "E: Could not get lock %[1]s/apt.lock" >&2; exit 100; }
trap 'rmdir %[1]s/apt.lock' EXIT
sleep 0.2
case " $* " in *" install "*)
  printf '#!/bin/bash\n' > %[2]s/redis-server; chmod +x %[2]s/redis-server; echo "$*" >> %[1]s/installs ;;
esac
`, dir, bin)
	sudo := "#!/bin/bash\nexec \"$@\"\n"
	for name, text := range map[string]string{"apt-get": aptGet, "sudo": sudo} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs("local/redis.sh")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(filepath.Join(bin, "bash"), script, "install")
			cmd.Env = []string{"PATH=" + bin, "TMPDIR=" + dir, "HOME=" + dir}
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Sprintf("%v: %s", err, out)
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("install %d of %d at once failed: %s", i+1, n, e)
		}
	}
	installs, _ := os.ReadFile(filepath.Join(dir, "installs"))
	if got := strings.Count(string(installs), "\n"); got != 1 {
		t.Errorf("redis-server installed %d times, want once:\n%s", got, installs)
	}
}
