package ops

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version and Commit identify the build. The Dockerfiles stamp them:
//
//	go build -ldflags "-X github.com/orderpipe/pipeline/plumbing/ops.Version=$VERSION -X github.com/orderpipe/pipeline/plumbing/ops.Commit=$COMMIT"
//
// Left empty, they come from the binary's build info (the main module's version; the VCS
// revision when built with -buildvcs in a git checkout), else "devel" / "unknown".
var (
	Version string
	Commit  string
)

// buildVersion returns the version and commit orderpipe_build_info reports.
func buildVersion() (version, commit string) {
	version, commit = Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		if commit == "" {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if commit != "" && modified {
				commit += "-dirty"
			}
		}
	}
	if version == "" {
		version = "devel"
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit
}

// newBuildInfo is orderpipe_build_info: always 1, the build in its labels, so dashboards can
// show which version runs where and alerts can join on it.
func newBuildInfo() prometheus.Collector {
	version, commit := buildVersion()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "orderpipe_build_info",
		Help:        "Always 1; the running build's version, commit and Go version are its labels.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": runtime.Version()},
	})
	g.Set(1)
	return g
}
