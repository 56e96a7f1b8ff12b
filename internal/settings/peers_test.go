package settings

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// fieldOf is the setting that reads an environment name.
// The peers' data, read once for the tests.
var (
	peerReads             = peerData()
	peerBefore, peerNames = peerOrder()
)

func fieldOf(name string) (Field, bool) {
	for _, f := range fields {
		if slices.Contains(f.Env, name) {
			return f, true
		}
	}
	return Field{}, false
}

// sample is a value of f's kind that Load accepts.
func sample(f Field) string {
	switch f.Kind {
	case "bool":
		return "true"
	case "int":
		return "1"
	case "duration":
		return "1s"
	}
	return "x"
}

// Every name any peer reads has a verdict; every verdict is of a name a
// peer reads; a name appears in one row only.
func TestPeerVerdictsCoverThePeers(t *testing.T) {
	t.Parallel()
	if len(peerReads) < 500 || len(peerNames) < 250 {
		t.Fatalf("%d rows, %d names: the peers' data is not all there", len(peerReads), len(peerNames))
	}
	var missing []string
	for n := range peerNames {
		if _, ok := verdictOf(n); !ok {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("names without a verdict in peers/verdicts.tsv:\n%s", strings.Join(missing, "\n"))
	}
	for n := range peerVerdicts {
		if !peerNames[n] {
			t.Errorf("verdicts.tsv has a row for %s, which no peer reads (names.tsv)", n)
		}
	}
	b, err := peerFiles.ReadFile("peers/verdicts.tsv")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if n, _, ok := strings.Cut(line, "\t"); ok {
			if rows[n]++; rows[n] == 2 {
				t.Errorf("%s has two rows in verdicts.tsv", n)
			}
		}
	}
	for _, r := range peerReads {
		if r.Version == "" || r.File == "" || !strings.Contains(r.Peer, "/") || !slices.Contains(r.With, r.Name) {
			t.Errorf("names.tsv row %+v: want a peer owner/name, its version, the file, and the names read with it", r)
		}
	}
}

// An honoured name is read by settings.Load, by the setting its row names
// (or, for a name another package reads from the step's environment, by
// that package); Unrecognized says nothing of it.
func TestPeerVerdictsHonoured(t *testing.T) {
	t.Parallel()
	for n, v := range peerVerdicts {
		if v.Verdict != honoured {
			continue
		}
		if pkg, ok := strings.CutPrefix(v.Setting, "environ:"); ok {
			name := `"` + strings.TrimSuffix(n, "*")
			if !strings.HasSuffix(n, "*") {
				name += `"`
			}
			if !sourceHolds(t, filepath.Join("..", strings.TrimPrefix(pkg, "internal/")), name) {
				t.Errorf("%s: honoured by %s, whose source never names %s", n, pkg, name)
			}
			continue
		}
		f, ok := fieldOf(n)
		if !ok {
			t.Errorf("%s: honoured, but no setting reads it", n)
			continue
		}
		if v.Setting != "" && v.Setting != "--"+f.Flag {
			t.Errorf("%s: verdicts.tsv says %s takes it, Load gives it to --%s", n, v.Setting, f.Flag)
		}
		dir := t.TempDir()
		// x serves as a tags file and as an env file.
		os.WriteFile(filepath.Join(dir, "x"), []byte("PLUGIN_TAGS=t1\n"), 0o644)
		s, err := Load(nil, env(map[string]string{n: sample(f)}), dir)
		if err != nil {
			t.Errorf("%s=%s: %v", n, sample(f), err)
			continue
		}
		if got := s.Origin(f.Flag); got != n && !strings.HasPrefix(got, n+" ") {
			t.Errorf("%s: --%s comes from %q", n, f.Flag, got)
		}
		if notes, err := Unrecognized([]string{n + "=" + sample(f)}); err != nil || len(notes) > 0 {
			t.Errorf("%s: Unrecognized says %q, %v", n, notes, err)
		}
	}
	// The other way round: a name Load reads that a peer reads too is
	// honoured by that setting in the data.
	for _, f := range fields {
		for _, e := range f.Env {
			if v, ok := peerVerdicts[e]; peerNames[e] && (!ok || v.Verdict != honoured) {
				t.Errorf("--%s reads %s, whose verdict is %q", f.Flag, e, v.Verdict)
			}
		}
	}
}

// sourceHolds reports whether a Go file of dir (not a test) holds s.
func sourceHolds(t *testing.T, dir, s string) bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go source in %s: %v", dir, err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// A refused name with a value is an error that gives its reason; off
// (empty or false) it is a notice. A harmless name gets a notice with its
// reason, unless the runner sets it on every step.
func TestPeerVerdictsRefusedAndHarmless(t *testing.T) {
	t.Parallel()
	var runner int
	for n, v := range peerVerdicts {
		if strings.HasSuffix(n, "*") {
			continue
		}
		switch v.Verdict {
		case refused:
			_, err := Unrecognized([]string{n + "=true"})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), n+": "+v.Reason) {
				t.Errorf("%s=true: %v, want the reason %q", n, err, v.Reason)
			}
			notes, err := Unrecognized([]string{n + "=false"})
			if err != nil || len(notes) != 1 || notes[0] != "setting "+n+" has no effect: "+v.Reason {
				t.Errorf("%s=false: %q, %v", n, notes, err)
			}
		case harmless:
			notes, err := Unrecognized([]string{n + "=1"})
			want := []string{"setting " + n + " has no effect: " + v.Reason}
			if runnerSet(n) {
				want, runner = nil, runner+1
			}
			if err != nil || !slices.Equal(notes, want) {
				t.Errorf("%s=1: %q, %v; want %q", n, notes, err, want)
			}
		}
		if v.Verdict != honoured {
			if f, ok := fieldOf(n); ok {
				t.Errorf("%s is %s, yet --%s reads it", n, v.Verdict, f.Flag)
			}
		}
	}
	if runner < 50 {
		t.Errorf("only %d runner variables: the quiet rule covers too little", runner)
	}
}

// Where peers read two names of a setting for one value, hoist reads them
// in the same order; where they read them in opposite orders, or no peer
// reads both, two different values are refused (TestPeerPrecedence).
func TestPeerOrderOfNames(t *testing.T) {
	t.Parallel()
	var checked int
	for _, f := range fields {
		for i, a := range f.Env {
			for _, b := range f.Env[i+1:] {
				if peerBefore[[2]string{b, a}] && !peerBefore[[2]string{a, b}] {
					t.Errorf("--%s reads %s before %s; the peers read %s first", f.Flag, a, b, b)
				}
				if peerBefore[[2]string{a, b}] {
					checked++
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d pairs of names are ordered by the peers' data", checked)
	}
}

// The order of precedence where two names of one setting meet, through
// Load: the peers' where they agree; refused, naming both, where they
// disagree or no peer reads both and the values differ; hoist's own
// order for a name of hoist's.
func TestPeerPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		got  func(*Settings) any
		want any
		err  []string
	}{
		{"PLUGIN_DRY_RUN before PLUGIN_NO_PUSH (plugins/docker, plugins/buildx)", map[string]string{"PLUGIN_DRY_RUN": "false", "PLUGIN_NO_PUSH": "true"}, func(s *Settings) any { return s.NoPush }, false, nil},
		{"PLUGIN_NO_PUSH alone", map[string]string{"PLUGIN_NO_PUSH": "true"}, func(s *Settings) any { return s.NoPush }, true, nil},
		{"PLUGIN_DOCKER_USERNAME before PLUGIN_BASE_IMAGE_USERNAME", map[string]string{"PLUGIN_BASE_IMAGE_USERNAME": "b", "PLUGIN_DOCKER_USERNAME": "d"}, func(s *Settings) any { return s.BaseUsername }, "d", nil},
		{"PLUGIN_BASE_IMAGE_REGISTRY before DOCKER_BASE_IMAGE_REGISTRY", map[string]string{"PLUGIN_BASE_IMAGE_REGISTRY": "r.example", "DOCKER_BASE_IMAGE_REGISTRY": "s.example"}, func(s *Settings) any { return s.BaseRegistry }, "r.example", nil},
		{"DOCKER_BASE_IMAGE_PASSWORD alone", map[string]string{"DOCKER_BASE_IMAGE_PASSWORD": "pw"}, func(s *Settings) any { return s.BasePassword }, "pw", nil},
		{"PLUGIN_DEFAULT_TAGS before PLUGIN_AUTO_TAG", map[string]string{"PLUGIN_DEFAULT_TAGS": "false", "PLUGIN_AUTO_TAG": "true"}, func(s *Settings) any { return s.AutoTag }, false, nil},
		{"TENANT_ID before PLUGIN_TENANT_ID (the ACR plugins)", map[string]string{"TENANT_ID": "t1", "PLUGIN_TENANT_ID": "t2"}, func(s *Settings) any { return s.TenantID }, "t1", nil},
		{"PLUGIN_TAGS_FILE before PLUGIN_TAG_FILE", map[string]string{"PLUGIN_TAGS_FILE": "a", "PLUGIN_TAG_FILE": "b"}, func(s *Settings) any { return s.Tags }, []string{"from-a"}, nil},
		{"two peers' names, different values", map[string]string{"PLUGIN_PLATFORM": "linux/amd64", "PLUGIN_PLATFORMS": "linux/arm64"}, nil, nil, []string{"PLUGIN_PLATFORM and PLUGIN_PLATFORMS are both set", `"linux/amd64" and "linux/arm64"`, "--platform", "no peer reads both; keep one"}},
		{"two peers' names, one value", map[string]string{"PLUGIN_CUSTOM_LABELS": "a=1, b=2", "PLUGIN_LABELS": "a=1,b=2"}, func(s *Settings) any { return s.Labels }, []string{"a=1", "b=2"}, nil},
		{"two peers' names, the first empty", map[string]string{"PLUGIN_PLATFORM": "", "PLUGIN_PLATFORMS": "linux/arm64"}, func(s *Settings) any { return s.Platforms }, []string{"linux/arm64"}, nil},
		{"the peers disagree", map[string]string{"PLUGIN_CLIENT_ID": "a", "AZURE_APP_ID": "b"}, nil, nil, []string{"PLUGIN_CLIENT_ID and AZURE_APP_ID are both set", "the peers read them in opposite orders"}},
		{"a secret's values are not shown", map[string]string{"PLUGIN_PASSWORD": "pw-one", "SERVICE_PRINCIPAL_CLIENT_SECRET": "pw-two"}, nil, nil, []string{"PLUGIN_PASSWORD and SERVICE_PRINCIPAL_CLIENT_SECRET are both set", `"****"`}},
		{"hoist's own name keeps hoist's order", map[string]string{"PLUGIN_BUILDER_REMOTE_CONN": "tcp://a:1", "BUILDKIT_HOST": "tcp://b:1"}, func(s *Settings) any { return s.BuilderAddr }, "tcp://a:1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "a"), []byte("from-a\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "b"), []byte("from-b\n"), 0o644)
			s, err := Load(nil, env(tc.env), dir)
			if tc.err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want an invalid setting", err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				for _, v := range tc.env {
					if strings.HasPrefix(v, "pw-") && strings.Contains(err.Error(), v) {
						t.Errorf("error shows the secret %q", v)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, tc.got(s)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// The peers' aliases that change what is built or pushed are honoured,
// each with its peer's semantics.
func TestPeerAliases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		got  func(*Settings) any
		want any
	}{
		{"PLUGIN_CUSTOM_PLATFORM", map[string]string{"PLUGIN_CUSTOM_PLATFORM": "linux/arm64"}, func(s *Settings) any { return s.Platforms }, []string{"linux/arm64"}},
		{"PLUGIN_PLATFORMS", map[string]string{"PLUGIN_PLATFORMS": "linux/amd64,linux/arm64"}, func(s *Settings) any { return s.Platforms }, []string{"linux/amd64", "linux/arm64"}},
		{"PLUGIN_LABELS", map[string]string{"PLUGIN_LABELS": "a=1,b=2"}, func(s *Settings) any { return s.Labels }, []string{"a=1", "b=2"}},
		{"PLUGIN_LABEL before PLUGIN_LABELS (Woodpecker)", map[string]string{"PLUGIN_LABEL": "a=1", "PLUGIN_LABELS": "b=2"}, func(s *Settings) any { return s.Labels }, []string{"a=1"}},
		{"PLUGIN_DEFAULT_LABELS", map[string]string{"PLUGIN_DEFAULT_LABELS": "false"}, func(s *Settings) any { return s.AutoLabel }, false},
		{"PLUGIN_EXTRA_TAGS: full references", map[string]string{"PLUGIN_EXTRA_TAGS": "r.example/a:1,s.example/b:2"}, func(s *Settings) any { return s.Destinations }, []string{"r.example/a:1", "s.example/b:2"}},
		{"PLUGIN_DEFAULT_TAG", map[string]string{"PLUGIN_DEFAULT_TAG": "edge"}, func(s *Settings) any { return s.DefaultTag }, "edge"},
		{"PLUGIN_DEFAULT_TAG unset", nil, func(s *Settings) any { return s.DefaultTag }, "latest"},
		{"PLUGIN_SECRETS: thegeeklab's escaped commas", map[string]string{"PLUGIN_SECRETS": `id=a\,src=f.txt, id=B ,id=c\,env=C,`}, func(s *Settings) any { return []any{s.Secret, s.Origin("secret")} }, []any{[]string{"id=a,src=f.txt", "id=B", "id=c,env=C"}, "PLUGIN_SECRETS"}},
		{"PLUGIN_SECRETS: Woodpecker's plain list", map[string]string{"PLUGIN_SECRETS": "id=A,id=B"}, func(s *Settings) any { return s.Secret }, []string{"id=A", "id=B"}},
		{"PLUGIN_SECRETS with the same PLUGIN_SECRET", map[string]string{"PLUGIN_SECRETS": `id=a\,env=A`, "PLUGIN_SECRET": "id=a,env=A"}, func(s *Settings) any { return s.Secret }, []string{"id=a,env=A"}},
		{"PLUGIN_SECRET", map[string]string{"PLUGIN_SECRET": "id=a,src=f;id=b,env=B"}, func(s *Settings) any { return s.Secret }, []string{"id=a,src=f", "id=b,env=B"}},
		{"PLUGIN_TAGS_FILE wins over PLUGIN_TAGS", map[string]string{"PLUGIN_TAGS_FILE": "ci/tags", "PLUGIN_TAGS": "x"}, func(s *Settings) any { return []any{s.Tags, s.Origin("tags")} }, []any{[]string{"1.2.3", "1.2", "stable"}, "PLUGIN_TAGS_FILE (ci/tags)"}},
		{"PLUGIN_TAG_FILE", map[string]string{"PLUGIN_TAG_FILE": "ci/tags"}, func(s *Settings) any { return s.Tags }, []string{"1.2.3", "1.2", "stable"}},
		{"PLUGIN_CACHE_IMAGES: both ways, after PLUGIN_CACHE_FROM", map[string]string{"PLUGIN_CACHE_IMAGES": "r.example/c:1,r.example/d", "PLUGIN_CACHE_FROM": "type=local,src=/c"},
			func(s *Settings) any { return []any{s.CacheFrom, s.CacheTo, s.Origin("cache-to")} },
			[]any{[]string{"type=local,src=/c", "type=registry,ref=r.example/c:1", "type=registry,ref=r.example/d"},
				[]string{"type=registry,ref=r.example/c:1,mode=max,image-manifest=true,oci-mediatypes=true", "type=registry,ref=r.example/d,mode=max,image-manifest=true,oci-mediatypes=true"}, "PLUGIN_CACHE_IMAGES"}},
		{"CI_REMOTE_URL", map[string]string{"CI_REMOTE_URL": "https://git.example/r.git"}, func(s *Settings) any { return s.RemoteURL }, "https://git.example/r.git"},
		{"DOCKER_PLUGIN_MIRROR", map[string]string{"DOCKER_PLUGIN_MIRROR": "https://mirror.example"}, func(s *Settings) any { return s.RegistryMirrors }, []string{"https://mirror.example"}},
		{"ACCESS_TOKEN", map[string]string{"ACCESS_TOKEN": "tok"}, func(s *Settings) any { return s.AccessToken }, "tok"},
		{"TOKEN: the GCR wrappers' JSON key", map[string]string{"TOKEN": "{}"}, func(s *Settings) any { return s.JSONKey }, "{}"},
		{"GCR_JSON_KEY before TOKEN", map[string]string{"GCR_JSON_KEY": "{1}", "TOKEN": "{2}"}, func(s *Settings) any { return s.JSONKey }, "{1}"},
		{"SERVICE_PRINCIPAL_CLIENT_ID/_SECRET", map[string]string{"SERVICE_PRINCIPAL_CLIENT_ID": "sp", "SERVICE_PRINCIPAL_CLIENT_SECRET": "pw"}, func(s *Settings) any { return []string{s.Username, s.Password} }, []string{"sp", "pw"}},
		{"BASE_REGISTRY: kaniko-gcr's registry", map[string]string{"BASE_REGISTRY": "eu.gcr.io"}, func(s *Settings) any { return s.Registry }, "eu.gcr.io"},
		{"PLUGIN_AZURE_AUTHORITY_HOST", map[string]string{"PLUGIN_AZURE_AUTHORITY_HOST": "https://login.example"}, func(s *Settings) any { return s.AzureAuthority }, "https://login.example"},
		{"Woodpecker's ECR repository settings", map[string]string{"PLUGIN_ECR_CREATE_REPOSITORY": "true", "PLUGIN_ECR_LIFECYCLE_POLICY": "l.json", "PLUGIN_ECR_REPOSITORY_POLICY": "r.json"}, func(s *Settings) any { return []any{s.CreateRepository, s.LifecyclePolicy, s.RepositoryPolicy} }, []any{true, "l.json", "r.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "ci"), 0o755)
			os.WriteFile(filepath.Join(dir, "ci", "tags"), []byte("1.2.3\n 1.2 \n\nstable\n"), 0o644)
			s, err := Load(nil, env(tc.env), dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, tc.got(s)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// What the peers' own forms refuse: a tags file that is not a regular
// file, too large, empty, missing or reached by a link out of the
// workspace; --tags and --tags-file both; two secret lists; a default tag
// that is not one tag; Woodpecker's list of repositories.
func TestPeerFormsRefused(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	outside := filepath.Join(t.TempDir(), "tags")
	os.WriteFile(outside, []byte("leaked\n"), 0o644)
	os.Symlink(outside, filepath.Join(ws, "out"))
	os.WriteFile(filepath.Join(ws, "big"), []byte(strings.Repeat("t\n", maxTagsFile)), 0o644)
	os.WriteFile(filepath.Join(ws, "empty"), []byte("\n \n"), 0o644)
	os.WriteFile(filepath.Join(ws, "ok"), []byte("t1\n"), 0o644)
	os.Mkdir(filepath.Join(ws, "dir"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		want  []string
	}{
		{"link out", map[string]string{"PLUGIN_TAGS_FILE": "out"}, nil, []string{`PLUGIN_TAGS_FILE="out": tags file`, "out of the workspace"}},
		{"too large", map[string]string{"PLUGIN_TAGS_FILE": "big"}, nil, []string{"larger than allowed"}},
		{"empty", map[string]string{"PLUGIN_TAG_FILE": "empty"}, nil, []string{`PLUGIN_TAG_FILE="empty": the tags file holds no tag`}},
		{"missing", map[string]string{"PLUGIN_TAGS_FILE": "nope"}, nil, []string{"no such file"}},
		{"a directory", map[string]string{"PLUGIN_TAGS_FILE": "dir"}, nil, []string{"not a regular file"}},
		{"a FIFO", map[string]string{"PLUGIN_TAGS_FILE": "fifo"}, nil, []string{"not a regular file (a FIFO)"}},
		{"both flags", nil, []string{"--tags=a", "--tags-file=ok"}, []string{"--tags and --tags-file are both given"}},
		{"two secret lists", map[string]string{"PLUGIN_SECRET": "id=a", "PLUGIN_SECRETS": "id=b"}, nil, []string{"PLUGIN_SECRET and PLUGIN_SECRETS both give build secrets"}},
		{"default tag", map[string]string{"PLUGIN_DEFAULT_TAG": "a:b"}, nil, []string{`PLUGIN_DEFAULT_TAG="a:b": want one tag`}},
		{"repositories", map[string]string{"PLUGIN_REPO": "r.example/a,r.example/b"}, nil, []string{"names several repositories", "PLUGIN_DESTINATIONS"}},
		{"cache image", map[string]string{"PLUGIN_CACHE_IMAGES": "type=registry"}, nil, []string{`PLUGIN_CACHE_IMAGES: "type=registry" is not an image reference`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var fs *pflag.FlagSet
			if tc.flags != nil {
				fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
				AddFlags(fs)
				if err := fs.Parse(tc.flags); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(fs, env(tc.env), ws)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want an invalid setting", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// A --tags flag wins over a file named in the environment.
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	fs.Parse([]string{"--tags=flag"})
	s, err := Load(fs, env(map[string]string{"PLUGIN_TAGS_FILE": "ok"}), ws)
	if err != nil || !slices.Equal(s.Tags, []string{"flag"}) {
		t.Errorf("tags %v, %v", s.Tags, err)
	}
}

// A migrating step's variables: hoist's own pass, a typo is named with the
// setting it is near, a peer's harmless variable gets a notice, the
// runner's own and those another package reads get none, and one that
// would change the image is refused.
func TestUnrecognized(t *testing.T) {
	t.Parallel()
	notes, err := Unrecognized([]string{"PLUGIN_REPO=app", "PLUGIN_REPOO=app", "PLUGIN_QUIET=true", "PLUGIN_DAEMON_OFF=true",
		"DRONE_COMMIT_SHA=abc", "DRONE_BUILD_NUMBER=7", "HOME=/root", "PLUGIN_CUSTOM_PLATFORM=linux/arm64", "PLUGIN_SOMETHING_ELSE_ENTIRELY=1", "PLUGIN_BAKE_OPTIONS=",
		"HTTP_PROXY=http://proxy:3128", "AWS_ROLE_ARN=arn", "DOCKER_LAUNCH_DEBUG=true", "HARNESS_HTTP_PROXY=http://p"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"setting DOCKER_LAUNCH_DEBUG has no effect: it configures the Docker daemon the peers start; hoist starts none",
		"setting HARNESS_HTTP_PROXY has no effect: hoist hands on HTTP_PROXY, HTTPS_PROXY and NO_PROXY only: set those",
		"setting PLUGIN_BAKE_OPTIONS has no effect: bake builds are not supported; build each target in its own step with PLUGIN_DOCKERFILE and PLUGIN_TARGET",
		"setting PLUGIN_QUIET has no effect: hoist's output is chosen with PLUGIN_PROGRESS",
		"setting PLUGIN_REPOO is not a hoist setting and is ignored; did you mean PLUGIN_REPO?",
		"setting PLUGIN_SOMETHING_ELSE_ENTIRELY is not a hoist setting and is ignored",
	}
	if d := cmp.Diff(want, notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
	_, err = Unrecognized([]string{"PLUGIN_BAKE_FILE=docker-bake.hcl", "PLUGIN_SQUASH=true", "PLUGIN_QUIET=true", "PLUGIN_INSECURE_PULL=true"})
	for _, w := range []string{"PLUGIN_BAKE_FILE: bake builds are not supported", "PLUGIN_SQUASH: squashing", "PLUGIN_INSECURE_PULL: use PLUGIN_INSECURE"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
	if _, err := Unrecognized([]string{"PLUGIN_SQUASH=false"}); err != nil {
		t.Errorf("a refused setting turned off: %v", err)
	}
}

// splitEscaped is thegeeklab's StringSliceFlag: a separator after the
// escape is part of the item.
func TestSplitEscaped(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		``:                  nil,
		`a,b`:               {"a", "b"},
		`id=a\,src=f,id=b`:  {"id=a,src=f", "id=b"},
		`x\,y\,z`:           {"x,y,z"},
		` a , ,b,`:          {"a", "b"},
		`id=a\\,src=f,id=b`: {`id=a\,src=f`, "id=b"},
	} {
		if got := splitEscaped(in, ",", `\`); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// .tags is a repository file too: read when regular and small, through no
// link out of the workspace; a missing one means latest.
func TestDotTagsIsARepositoryFile(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	if s, err := Load(nil, env(nil), ws); err != nil || !slices.Equal(s.Tags, []string{"latest"}) {
		t.Fatalf("no .tags: %v, %v", s, err)
	}
	os.WriteFile(filepath.Join(ws, ".tags"), []byte("a,b\n"), 0o644)
	if s, err := Load(nil, env(nil), ws); err != nil || !slices.Equal(s.Tags, []string{"a", "b"}) || s.Origin("tags") != filepath.Join(ws, ".tags") {
		t.Fatalf(".tags: %v, %v", s, err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "tags"), []byte("leaked"), 0o644)
	os.Remove(filepath.Join(ws, ".tags"))
	os.Symlink(filepath.Join(out, "tags"), filepath.Join(ws, ".tags"))
	if _, err := Load(nil, env(nil), ws); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "out of the workspace") {
		t.Errorf(".tags linked out: %v", err)
	}
	os.Remove(filepath.Join(ws, ".tags"))
	os.Mkdir(filepath.Join(ws, ".tags"), 0o755)
	if _, err := Load(nil, env(nil), ws); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf(".tags a directory: %v", err)
	}
}

// DOCKER_USERNAME and DOCKER_PASSWORD are the push login in plugins/docker
// and the base image's login in the Kaniko plugins: given for another
// registry than the push registry, the step is refused rather than
// sending the credentials to the wrong host.
func TestDockerLoginForAnotherRegistry(t *testing.T) {
	t.Parallel()
	ecr := "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	_, err := Load(nil, env(map[string]string{"PLUGIN_REGISTRY": ecr, "PLUGIN_REPO": ecr + "/app",
		"DOCKER_REGISTRY": "https://index.docker.io/v1/", "DOCKER_USERNAME": "hubuser", "DOCKER_PASSWORD": "hubpass"}), t.TempDir())
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v, want an invalid setting", err)
	}
	for _, w := range []string{"DOCKER_USERNAME and DOCKER_PASSWORD given for DOCKER_REGISTRY=docker.io", "PLUGIN_REGISTRY names " + ecr, "PLUGIN_BASE_IMAGE_USERNAME"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "hubpass") {
		t.Errorf("error %q holds the password", err)
	}
	// The same registry written another way, or DOCKER_* alone: the push login.
	for name, e := range map[string]map[string]string{
		"same host": {"PLUGIN_REGISTRY": "index.docker.io", "PLUGIN_REPO": "team/app", "DOCKER_REGISTRY": "https://index.docker.io/v1/", "DOCKER_USERNAME": "u", "DOCKER_PASSWORD": "p"},
		"alone":     {"PLUGIN_REPO": "r.example/app", "DOCKER_REGISTRY": "r.example", "DOCKER_USERNAME": "u", "DOCKER_PASSWORD": "p"},
		"no login":  {"PLUGIN_REGISTRY": ecr, "PLUGIN_REPO": ecr + "/app", "DOCKER_REGISTRY": "docker.io"},
	} {
		s, err := Load(nil, env(e), t.TempDir())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e["DOCKER_USERNAME"] != "" && (s.Username != "u" || s.Password != "p") {
			t.Errorf("%s: login %q/%q, want the DOCKER_* pair", name, s.Username, s.Password)
		}
	}
}

// A misspelt setting of the promotion's policy is refused, not noticed:
// the promotion would run under a weaker policy than the one written.
// Other typos keep their notice; an empty one says nothing is set.
func TestUnrecognizedPromotePolicy(t *testing.T) {
	t.Parallel()
	for _, kv := range []string{"PLUGIN_PROMOTE_KEYY=cosign.pub", "PLUGIN_PROMTE_REQUIRE=scan", "PLUGIN_PROMOTE_REQUIRES=sbom", "PLUGIN_PROMOTE_POLICY=strict"} {
		k, _, _ := strings.Cut(kv, "=")
		notes, err := Unrecognized([]string{kv, "PLUGIN_TAGSS=1"})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), k+": not a setting of the promotion's policy") {
			t.Errorf("%s: %v, want it refused", kv, err)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], "PLUGIN_TAGSS is not a hoist setting and is ignored; did you mean PLUGIN_TAGS?") {
			t.Errorf("%s: notes %q, want the other typo's notice", kv, notes)
		}
	}
	if err := func() error { _, err := Unrecognized([]string{"PLUGIN_PROMOTE_KEYY=cosign.pub"}); return err }(); err == nil || !strings.Contains(err.Error(), "did you mean PLUGIN_PROMOTE_KEY?") {
		t.Errorf("the refusal names the setting it is near: %v", err)
	}
	if notes, err := Unrecognized([]string{"PLUGIN_PROMOTE_KEYY="}); err != nil || len(notes) != 1 {
		t.Errorf("an empty misspelt policy setting: %q, %v; want a notice", notes, err)
	}
}
