package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/orderpipe/pipeline/schemas"
)

// loadCompose parses and validates docker-compose.yml with compose-go, the loader that
// `docker compose config` itself uses: schema validation, interpolation, and consistency checks
// (depends_on targets, anchors, and so on). No engine is needed.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithName("orderpipe"), cli.WithConsistency(true), cli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeRunsTheWholeStack(t *testing.T) {
	p := loadCompose(t)
	want := []string{"kafka", "redis", "topics", "ddsandbox", "ingress", "normalizer", "dispatcher"}
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	if img := p.Services["kafka"].Image; !strings.HasPrefix(img, "apache/kafka:4.") {
		t.Errorf("kafka image = %q, want apache/kafka 4.x", img)
	}
	if roles := p.Services["kafka"].Environment["KAFKA_PROCESS_ROLES"]; roles == nil || *roles != "broker,controller" {
		t.Errorf("kafka is not a combined KRaft node: KAFKA_PROCESS_ROLES = %v", roles)
	}
}

// Every service of ours is built from this repository with a Dockerfile and stage that exist,
// has a healthcheck, and starts only after the topics were bootstrapped.
func TestComposeServicesBuildFromRepo(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"ddsandbox", "ingress", "normalizer", "dispatcher"} {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			if s.Build == nil {
				t.Fatal("not built from the repository")
			}
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			b, err := os.ReadFile(df)
			if err != nil {
				t.Fatalf("dockerfile: %v", err)
			}
			target := s.Build.Target
			if target == "" {
				target = name
			}
			if !regexp.MustCompile(`(?m)^FROM \S+ AS ` + regexp.QuoteMeta(target) + `$`).Match(b) {
				t.Errorf("%s has no stage %q", df, target)
			}
			checkDockerfile(t, s.Build.Context, string(b))
			if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
				t.Error("no healthcheck")
			}
			if name == "ddsandbox" {
				return
			}
			if d, ok := s.DependsOn["topics"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("depends_on topics = %+v, want service_completed_successfully", d)
			}
			if v := s.Environment["KAFKA_BROKERS"]; v == nil || *v != "kafka:9092" {
				t.Errorf("KAFKA_BROKERS = %v", v)
			}
			if v := s.Environment["TOPIC_AUTO_CREATE"]; v == nil || *v != "false" {
				t.Errorf("TOPIC_AUTO_CREATE = %v, want false: the bootstrap owns topic settings", v)
			}
		})
	}
}

// checkDockerfile holds the image rules: multi-stage, static, non-root, built in workspace mode
// (the module versions make test ran), base images pinned, the build stamped for
// orderpipe_build_info, and every COPY source exists in the build context.
func checkDockerfile(t *testing.T, context, df string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^COPY go\.work go\.work\.sum `).MatchString(df) ||
		regexp.MustCompile(`(?m)^(ENV|RUN|ARG)\b.*GOWORK=off`).MatchString(df) {
		t.Error("not built in workspace mode (COPY go.work go.work.sum, no GOWORK=off): the image would ship other versions than the tests ran")
	}
	for _, m := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1) {
		if !pinnedImage(m[1]) {
			t.Errorf("base image %s is not pinned (exact x.y.z version or @sha256 digest)", m[1])
		}
	}
	for _, v := range []string{"ops.Version=${VERSION}", "ops.Commit=${COMMIT}"} {
		if !strings.Contains(df, v) {
			t.Errorf("the build does not stamp %s (orderpipe_build_info)", v)
		}
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("binary is not static (CGO_ENABLED=0 missing)")
	}
	if !strings.Contains(df, "USER nonroot") {
		t.Error("final image does not run as non-root")
	}
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(.+) \S+$`).FindAllStringSubmatch(df, -1) {
		if strings.Contains(m[0], "--from=") {
			continue
		}
		for _, src := range strings.Fields(m[1]) {
			if _, err := os.Stat(filepath.Join(context, src)); err != nil {
				t.Errorf("COPY source %s: %v", src, err)
			}
		}
	}
}

// The bootstrap creates every topic of the contract.
func TestComposeBootstrapsEveryTopic(t *testing.T) {
	p := loadCompose(t)
	script := strings.Join(p.Services["topics"].Command, "\n")
	created := regexp.MustCompile(`(?m)^\s*create (\S+)`).FindAllStringSubmatch(script, -1)
	var got []string
	for _, m := range created {
		got = append(got, m[1])
	}
	for _, topic := range []string{schemas.TopicRaw, schemas.TopicRawDLQ, schemas.TopicStatus, schemas.TopicDelivery,
		schemas.TopicLifecycle, schemas.TopicRefund, schemas.TopicDangdangResult, schemas.TopicStatusDLQ} {
		if !slices.Contains(got, topic) {
			t.Errorf("topic %s is not bootstrapped (created: %v)", topic, got)
		}
	}
}

// The topics that hold raw callbacks allow records of schemas.RawMaxMessageBytes, in compose and
// in the Kubernetes bootstrap Job alike: a callback at the ingress's body limit must fit.
func TestBootstrapsAllowRawEnvelopes(t *testing.T) {
	want := strconv.Itoa(schemas.RawMaxMessageBytes)
	compose := strings.Join(loadCompose(t).Services["topics"].Command, "\n")
	job, err := os.ReadFile("k8s/base/topics.sh")
	if err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"docker-compose.yml": compose, "topics.sh": string(job)} {
		for _, topic := range []string{schemas.TopicRaw, schemas.TopicRawDLQ} {
			line := regexp.MustCompile(`(?m)^\s*create ` + regexp.QuoteMeta(topic) + `\s+(.*)$`).FindStringSubmatch(script)
			if line == nil || !strings.HasSuffix(strings.TrimSpace(line[1]), " "+want) {
				t.Errorf("%s: %s is not created with max.message.bytes %s (line: %v)", name, topic, want, line)
			}
		}
		if !strings.Contains(script, "max.message.bytes=") {
			t.Errorf("%s: the create function does not pass max.message.bytes", name)
		}
	}
}

// pinnedImage: a digest, or a tag that starts with an exact major.minor.patch version.
func pinnedImage(ref string) bool {
	if regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(ref) {
		return true
	}
	i := strings.LastIndex(ref, ":")
	return i > strings.LastIndex(ref, "/") && regexp.MustCompile(`^v?\d+\.\d+\.\d+([-.]\w+)*$`).MatchString(ref[i+1:])
}

func TestPinnedImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"golang:1.26.7-bookworm": true, "golang:1.26-bookworm": false, "apache/kafka:4.1.1": true,
		"gcr.io/distroless/static-debian12:nonroot": false, "redis:7-alpine": false, "x:latest": false,
		"gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab": true,
		"localhost:5000/img": false,
	} {
		if pinnedImage(ref) != want {
			t.Errorf("pinnedImage(%s) = %v", ref, !want)
		}
	}
}

// TestComposeImagesPinned: the third-party images the stack runs are pinned like the Dockerfiles'
// bases, so `docker compose up` runs what was tried.
func TestComposeImagesPinned(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Build == nil && !pinnedImage(s.Image) {
			t.Errorf("service %s: image %s is not pinned (exact x.y.z version or @sha256 digest)", name, s.Image)
		}
	}
}
