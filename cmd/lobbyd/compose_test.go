package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The container files at the repository's root: what can be checked of
// them without a container daemon (docker compose config, image builds and
// the stack itself need one).
const (
	composeRoot         = "../.."
	composeBaseFile     = "docker-compose.yml"
	composePlayFabFile  = "docker-compose.playfab.yml"
	composeEnvExample   = "deploy/compose.env.example"
	composeEnvFile      = ".env" // git-ignored: the secrets, made from the example
	composeLBConfigPath = "deploy/nginx/lobbyd.conf"
)

// composeFile is the part of a compose file that the checks read. Fields
// with several shapes (short and long syntax) are kept as decoded; YAML
// anchors, aliases and merge keys (<<) are resolved by the decoder.
type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Networks map[string]*composeNetwork `yaml:"networks"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Profiles    []string       `yaml:"profiles"`
	DependsOn   any            `yaml:"depends_on"`
	Ports       []any          `yaml:"ports"`
	Environment any            `yaml:"environment"`
	EnvFile     any            `yaml:"env_file"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	Restart     string         `yaml:"restart"`
	Volumes     []any          `yaml:"volumes"`
	Command     any            `yaml:"command"`
	NetworkMode string         `yaml:"network_mode"`
	Networks    map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
}

type composeNetwork struct {
	IPAM struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

func parseCompose(data []byte) (composeFile, error) {
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		return cf, err
	}
	if len(cf.Services) == 0 {
		return cf, fmt.Errorf("no services")
	}
	for name, s := range cf.Services {
		if s == nil {
			cf.Services[name] = &composeService{}
		}
	}
	return cf, nil
}

// env is the service's environment as a map, from either syntax.
func (s *composeService) env() map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			if v == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(fmt.Sprint(item), "=")
			out[k] = v
		}
	}
	return out
}

// dependsOn maps each service s depends on to its condition ("" in the
// list syntax).
func (s *composeService) dependsOn() map[string]string {
	out := map[string]string{}
	switch d := s.DependsOn.(type) {
	case []any:
		for _, name := range d {
			out[fmt.Sprint(name)] = ""
		}
	case map[string]any:
		for name, spec := range d {
			cond := ""
			if m, ok := spec.(map[string]any); ok {
				cond = fmt.Sprint(m["condition"])
			}
			out[name] = cond
		}
	}
	return out
}

// build returns the build's context, Dockerfile and target; ok is false
// when the service is not built.
func (s *composeService) build() (context, dockerfile, target string, ok bool) {
	switch b := s.Build.(type) {
	case string:
		return b, "Dockerfile", "", true
	case map[string]any:
		context, dockerfile = ".", "Dockerfile"
		if v, ok := b["context"].(string); ok {
			context = v
		}
		if v, ok := b["dockerfile"].(string); ok {
			dockerfile = v
		}
		target, _ = b["target"].(string)
		return context, dockerfile, target, true
	}
	return "", "", "", false
}

// command is the service's command as a list of words.
func (s *composeService) command() []string {
	switch c := s.Command.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		var out []string
		for _, w := range c {
			out = append(out, fmt.Sprint(w))
		}
		return out
	}
	return nil
}

// composeMount is one entry of a service's volumes.
type composeMount struct {
	bind           bool // a host path, not a named volume
	source, target string
}

func (s *composeService) mounts() []composeMount {
	var out []composeMount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				out = append(out, composeMount{target: parts[0]}) // anonymous volume
				continue
			}
			src := parts[0]
			bind := strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~")
			out = append(out, composeMount{bind: bind, source: src, target: parts[1]})
		case map[string]any:
			src, _ := v["source"].(string)
			dst, _ := v["target"].(string)
			out = append(out, composeMount{bind: v["type"] == "bind", source: src, target: dst})
		}
	}
	return out
}

// composeIsLobbyd tells the lobbyd nodes: built from the lobbyd target, or
// named so.
func composeIsLobbyd(name string, s *composeService) bool {
	if _, _, target, ok := s.build(); ok && target == "lobbyd" {
		return true
	}
	return strings.HasPrefix(name, "lobbyd")
}

// composeIsRedis tells the Redis service.
func composeIsRedis(name string, s *composeService) bool {
	return name == "redis" || strings.HasPrefix(s.Image, "redis:") || s.Image == "redis"
}

// mergeCompose applies an override file to a base file, as
// `docker compose -f base -f over` does for the fields checked here.
func mergeCompose(base, over composeFile) composeFile {
	out := composeFile{Services: map[string]*composeService{}, Networks: map[string]*composeNetwork{}, Volumes: map[string]any{}}
	for _, cf := range []composeFile{base, over} {
		for k, v := range cf.Networks {
			out.Networks[k] = v
		}
		for k, v := range cf.Volumes {
			out.Volumes[k] = v
		}
	}
	for name, s := range base.Services {
		c := *s
		out.Services[name] = &c
	}
	for name, o := range over.Services {
		s, ok := out.Services[name]
		if !ok {
			c := *o
			out.Services[name] = &c
			continue
		}
		if o.Image != "" {
			s.Image = o.Image
		}
		if o.Build != nil {
			s.Build = o.Build
		}
		if o.Profiles != nil {
			s.Profiles = o.Profiles
		}
		if o.DependsOn != nil {
			deps := map[string]any{}
			for n, c := range s.dependsOn() {
				deps[n] = map[string]any{"condition": c}
			}
			for n, c := range o.dependsOn() {
				deps[n] = map[string]any{"condition": c}
			}
			s.DependsOn = deps
		}
		if o.Environment != nil {
			env := map[string]any{}
			for k, v := range s.env() {
				env[k] = v
			}
			for k, v := range o.env() {
				env[k] = v
			}
			s.Environment = env
		}
		s.Ports = append(slices.Clone(s.Ports), o.Ports...)
		s.Volumes = append(slices.Clone(s.Volumes), o.Volumes...)
		if o.EnvFile != nil {
			s.EnvFile = o.EnvFile
		}
		if o.Healthcheck != nil {
			s.Healthcheck = o.Healthcheck
		}
		if o.Restart != "" {
			s.Restart = o.Restart
		}
		if o.Command != nil {
			s.Command = o.Command
		}
		if o.NetworkMode != "" {
			s.NetworkMode = o.NetworkMode
		}
	}
	return out
}

// composeSecretName tells the variables that hold secrets; a *_FILE
// variable holds a path.
var composeSecretName = regexp.MustCompile(`(?i)(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|_KEY$)`)

// composeInterpolation is a value that is one variable from the
// environment or .env, optionally required (${VAR:?message}), with no
// default: a default would be a secret committed in the file.
var composeInterpolation = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$`)

func composeSecretProblem(name, value string) string {
	if !composeSecretName.MatchString(name) || strings.HasSuffix(strings.ToUpper(name), "_FILE") || value == "" {
		return ""
	}
	if composeInterpolation.MatchString(value) {
		return ""
	}
	return fmt.Sprintf("%s has a value written in the file: a secret must be a ${%s:?...} interpolation from .env", name, name)
}

// composePortProblem checks that a published port binds the loopback
// address only.
func composePortProblem(p any) string {
	var host string
	switch p := p.(type) {
	case map[string]any:
		if p["published"] == nil {
			return "" // not published
		}
		host, _ = p["host_ip"].(string)
	default:
		spec := fmt.Sprint(p)
		spec, _, _ = strings.Cut(spec, "/") // 8080/tcp
		if strings.HasPrefix(spec, "[") {   // [::1]:8080:8080
			end := strings.Index(spec, "]")
			if end > 0 {
				host = spec[1:end]
			}
		} else if parts := strings.Split(spec, ":"); len(parts) == 3 {
			host = parts[0]
		}
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return ""
	}
	if host == "" {
		host = "every interface"
	}
	desc := fmt.Sprint(p)
	if str, ok := p.(string); ok {
		desc = strconv.Quote(str)
	}
	return fmt.Sprintf("port %s is published on %s: bind it to 127.0.0.1 only (\"127.0.0.1:HOST:CONTAINER\")", desc, host)
}

// composeRestartPolicies are the restart policies that bring a node back.
var composeRestartPolicies = regexp.MustCompile(`^(always|unless-stopped|on-failure(:\d+)?)$`)

// composeProblems checks a compose file (the base, or the base with an
// override merged) whose paths are relative to dir.
func composeProblems(cf composeFile, dir string) []string {
	var problems []string
	bad := func(service, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("service %s: ", service)+fmt.Sprintf(format, a...))
	}
	names := make([]string, 0, len(cf.Services))
	for name := range cf.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := cf.Services[name]
		// Published ports: 127.0.0.1 only.
		for _, p := range s.Ports {
			if msg := composePortProblem(p); msg != "" {
				bad(name, "%s", msg)
			}
		}
		if s.NetworkMode == "host" {
			bad(name, "network_mode: host publishes every port on every interface")
		}
		// Secrets: from .env, never in the file.
		env := s.env()
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if msg := composeSecretProblem(k, env[k]); msg != "" {
				bad(name, "environment: %s", msg)
			}
		}
		cmd := s.command()
		for i, w := range cmd {
			flagName, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if !strings.HasPrefix(w, "-") {
				continue
			}
			if !hasValue && i+1 < len(cmd) {
				value = cmd[i+1]
			}
			if msg := composeSecretProblem(strings.ReplaceAll(flagName, "-", "_"), value); msg != "" {
				bad(name, "command: flag %s has a secret written in the file: pass it from .env", w)
			}
		}
		// lobbyd and Redis: a healthcheck, and come back after a crash.
		if composeIsLobbyd(name, s) || composeIsRedis(name, s) {
			test := s.Healthcheck["test"]
			if disabled, _ := s.Healthcheck["disable"].(bool); disabled || test == nil || fmt.Sprint(test) == "[NONE]" {
				bad(name, "has no healthcheck")
			}
			if !composeRestartPolicies.MatchString(s.Restart) {
				bad(name, "restart policy %q does not restart it (want unless-stopped)", s.Restart)
			}
		}
		// depends_on: only services that always run.
		deps := s.dependsOn()
		depNames := make([]string, 0, len(deps))
		for d := range deps {
			depNames = append(depNames, d)
		}
		sort.Strings(depNames)
		for _, d := range depNames {
			target, ok := cf.Services[d]
			switch {
			case !ok:
				bad(name, "depends_on %s, which is not a service", d)
			case len(target.Profiles) > 0:
				bad(name, "depends_on %s, which is optional (profiles %v): leaving it out would break the file", d, target.Profiles)
			}
		}
		// Paths.
		if context, dockerfile, _, ok := s.build(); ok && !strings.Contains(context, "://") {
			if fi, err := os.Stat(filepath.Join(dir, context)); err != nil || !fi.IsDir() {
				bad(name, "build context %s is not a directory", context)
			} else if _, err := os.Stat(filepath.Join(dir, context, dockerfile)); err != nil {
				bad(name, "build Dockerfile %s is missing", filepath.Join(context, dockerfile))
			}
		}
		for _, m := range s.mounts() {
			switch {
			case m.bind && !strings.Contains(m.source, "${"):
				if _, err := os.Stat(filepath.Join(dir, m.source)); err != nil {
					bad(name, "mounts %s, which does not exist", m.source)
				}
			case !m.bind && m.source != "":
				if _, ok := cf.Volumes[m.source]; !ok {
					bad(name, "mounts volume %s, which is not declared under volumes", m.source)
				}
			}
		}
		for _, f := range composeEnvFiles(s.EnvFile) {
			if f.path == composeEnvFile {
				continue // the git-ignored secrets, made from composeEnvExample
			}
			if _, err := os.Stat(filepath.Join(dir, f.path)); err != nil && f.required {
				bad(name, "env_file %s does not exist", f.path)
			}
		}
	}
	return problems
}

type composeEnvFileRef struct {
	path     string
	required bool
}

func composeEnvFiles(v any) []composeEnvFileRef {
	var items []any
	switch v := v.(type) {
	case string:
		items = []any{v}
	case []any:
		items = v
	}
	var out []composeEnvFileRef
	for _, item := range items {
		switch item := item.(type) {
		case string:
			out = append(out, composeEnvFileRef{item, true})
		case map[string]any:
			path, _ := item["path"].(string)
			required, isSet := item["required"].(bool)
			out = append(out, composeEnvFileRef{path, required || !isSet})
		}
	}
	return out
}

// composeVarRef finds the variables a compose file interpolates; group 2
// is "?" or ":?" for a required one.
var composeVarRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?\?|:?-)?`)

// composeEnvExampleProblems checks that the env file example names every
// variable the compose file interpolates, with the required ones
// uncommented (so that filling in the example is enough) unless
// commentedOK (an override's own variables).
func composeEnvExampleProblems(compose, example string, commentedOK bool) []string {
	var problems []string
	seen := map[string]bool{}
	for _, line := range strings.Split(compose, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range composeVarRef.FindAllStringSubmatch(line, -1) {
			v := m[1]
			if seen[v] {
				continue
			}
			seen[v] = true
			required := strings.HasSuffix(m[2], "?")
			set := regexp.MustCompile(`(?m)^` + v + `=`).MatchString(example)
			mentioned := regexp.MustCompile(`(?m)^#?\s*` + v + `=`).MatchString(example)
			switch {
			case required && !set && !(commentedOK && mentioned):
				problems = append(problems, fmt.Sprintf("%s requires ${%s} but %s has no line %s=", "the compose file", v, composeEnvExample, v))
			case !mentioned:
				problems = append(problems, fmt.Sprintf("the compose file reads ${%s} but %s does not mention it", v, composeEnvExample))
			}
		}
	}
	return problems
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct{ cmd, args string }

type dockerStage struct {
	image, name string
	instrs      []dockerInstr
}

func parseDockerfile(text string) []dockerStage {
	var stages []dockerStage
	var logical strings.Builder
	flush := func() {
		line := strings.TrimSpace(logical.String())
		logical.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			var st dockerStage
			fields := strings.Fields(args)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:] // --platform=...
			}
			if len(fields) > 0 {
				st.image = fields[0]
			}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, dockerInstr{cmd, args})
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, also between continuation lines
		}
		if strings.HasSuffix(trimmed, `\`) {
			logical.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		logical.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// dockerfileProblems checks a Dockerfile: multi-stage with named stages and
// pinned images, modules downloaded in a layer before the sources are
// copied, a static build, and each of targets (the images compose builds)
// running as a non-root user with a HEALTHCHECK.
func dockerfileProblems(text string, targets []string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	stages := parseDockerfile(text)
	if len(stages) < 2 {
		bad("not multi-stage: %d FROM", len(stages))
	}
	named := map[string]dockerStage{}
	for i, st := range stages {
		if st.name == "" {
			bad("stage %d (FROM %s) has no name: FROM image AS name", i+1, st.image)
		}
		if _, isStage := named[st.image]; !isStage && st.image != "scratch" {
			ref := st.image[strings.LastIndex(st.image, "/")+1:]
			if !strings.Contains(ref, ":") && !strings.Contains(ref, "@") || strings.HasSuffix(ref, ":latest") {
				bad("stage %s: image %s is not pinned to a version", st.name, st.image)
			}
		}
		named[st.name] = st
	}
	built := false
	for _, st := range stages {
		download, copySources := -1, -1
		for i, in := range st.instrs {
			switch {
			case in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0:
				download = i
			case in.cmd == "COPY" && strings.HasSuffix(in.args, ". .") && copySources < 0:
				copySources = i
			case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
				built = true
				if !strings.Contains(in.args, "CGO_ENABLED=0") || !strings.Contains(in.args, "-trimpath") {
					bad("stage %s: go build without CGO_ENABLED=0 and -trimpath: %s", st.name, in.args)
				}
				if download < 0 || copySources >= 0 && download > copySources {
					bad("stage %s: modules are not downloaded (COPY go.mod go.sum, RUN go mod download) before the sources are copied", st.name)
				}
			}
		}
	}
	if !built {
		bad("no stage runs go build")
	}
	for _, target := range targets {
		st, ok := named[target]
		if !ok {
			bad("no stage %s (a build target of the compose file)", target)
			continue
		}
		user, health, entry := "", "", false
		for _, in := range st.instrs {
			switch in.cmd {
			case "USER":
				user = in.args
			case "HEALTHCHECK":
				health = in.args
			case "ENTRYPOINT", "CMD":
				entry = true
			}
		}
		name, _, _ := strings.Cut(user, ":")
		switch {
		case user == "":
			bad("stage %s has no USER: it runs as root", target)
		case name == "root" || name == "0":
			bad("stage %s runs as root (USER %s)", target, user)
		}
		if health == "" || strings.EqualFold(health, "NONE") {
			bad("stage %s has no HEALTHCHECK", target)
		}
		if !entry {
			bad("stage %s has no ENTRYPOINT or CMD", target)
		}
	}
	return problems
}

// nginxProblems checks the load balancer's configuration: every lobbyd
// node in the upstream with passive health checks, WebSocket upgrades
// passed on, sockets not cut before lobbyd's 60 s idle limit, and the
// client's address forwarded.
func nginxProblems(conf string, nodes []string, listenPort string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var lines []string
	for _, line := range strings.Split(conf, "\n") {
		line, _, _ = strings.Cut(line, "#")
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	text := strings.Join(lines, "\n")
	has := func(re string) bool { return regexp.MustCompile(`(?m)^` + re).MatchString(text) }
	for _, node := range nodes {
		m := regexp.MustCompile(`(?m)^server ` + regexp.QuoteMeta(node) + `:8080\b(.*);`).FindStringSubmatch(text)
		switch {
		case m == nil:
			bad("no upstream server %s:8080", node)
		case !strings.Contains(m[1], "max_fails=") || !strings.Contains(m[1], "fail_timeout="):
			bad("upstream server %s has no passive health check (max_fails=, fail_timeout=)", node)
		}
	}
	for _, want := range []struct{ re, what string }{
		{`map \$http_upgrade \$connection_upgrade \{`, "map $http_upgrade $connection_upgrade"},
		{`proxy_http_version 1\.1;`, "proxy_http_version 1.1"},
		{`proxy_set_header Upgrade \$http_upgrade;`, "proxy_set_header Upgrade $http_upgrade"},
		{`proxy_set_header Connection \$connection_upgrade;`, "proxy_set_header Connection $connection_upgrade"},
		{`proxy_set_header X-Forwarded-For \$`, "proxy_set_header X-Forwarded-For"},
		{`proxy_pass http://`, "proxy_pass"},
		{`listen (127\.0\.0\.1:)?` + regexp.QuoteMeta(listenPort) + `\b`, "listen " + listenPort},
	} {
		if !has(want.re) {
			bad("no %s", want.what)
		}
	}
	m := regexp.MustCompile(`(?m)^proxy_read_timeout (\d+)(ms|s|m|h|d)?;`).FindStringSubmatch(text)
	if m == nil {
		bad("no proxy_read_timeout: nginx's default 60s would cut idle sockets that lobbyd keeps for 60s")
	} else {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"": time.Second, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
		if d := time.Duration(n) * unit; d <= 60*time.Second {
			bad("proxy_read_timeout %v is not above lobbyd's 60s idle limit", d)
		}
	}
	return problems
}

func composeReport(t *testing.T, what string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}

func composeRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestComposeFiles checks docker-compose.yml, its real-PlayFab override,
// the Dockerfile, the nginx configuration and the env file example.
func TestComposeFiles(t *testing.T) {
	baseText, overText := composeRead(t, composeBaseFile), composeRead(t, composePlayFabFile)
	base, err := parseCompose([]byte(baseText))
	if err != nil {
		t.Fatalf("%s: %v", composeBaseFile, err)
	}
	over, err := parseCompose([]byte(overText))
	if err != nil {
		t.Fatalf("%s: %v", composePlayFabFile, err)
	}
	merged := mergeCompose(base, over)
	composeReport(t, composeBaseFile, composeProblems(base, composeRoot))
	composeReport(t, composeBaseFile+" + "+composePlayFabFile, composeProblems(merged, composeRoot))

	t.Run("stack", func(t *testing.T) {
		for _, name := range []string{"redis", "fakeplayfab", "lobbyd-1", "lobbyd-2", "lb"} {
			if base.Services[name] == nil {
				t.Errorf("no service %s", name)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		redis := base.Services["redis"]
		if cmd := strings.Join(redis.command(), " "); !strings.Contains(cmd, "--appendonly yes") {
			t.Errorf("redis: command %q does not turn on the append-only file", cmd)
		}
		if !slices.ContainsFunc(redis.mounts(), func(m composeMount) bool { return m.target == "/data" && !m.bind && m.source != "" }) {
			t.Errorf("redis: no named volume on /data")
		}

		subnets := base.Networks["default"]
		if subnets == nil || len(subnets.IPAM.Config) != 1 || subnets.IPAM.Config[0].Subnet == "" {
			t.Fatalf("networks.default has no fixed subnet (ipam.config[0].subnet) for LOBBYD_TRUSTED_PROXIES")
		}
		lbAddress := base.Services["lb"].Networks["default"].IPv4Address
		if lbAddress == "" {
			t.Fatalf("lb has no fixed address (networks.default.ipv4_address) for LOBBYD_TRUSTED_PROXIES")
		}
		nodeIDs := map[string]bool{}
		var nodes []string
		for name, s := range base.Services {
			if !composeIsLobbyd(name, s) {
				continue
			}
			nodes = append(nodes, name)
			env := s.env()
			if id := env["LOBBYD_NODE_ID"]; id == "" || nodeIDs[id] {
				t.Errorf("%s: LOBBYD_NODE_ID %q is empty or not unique", name, id)
			} else {
				nodeIDs[id] = true
			}
			for k, want := range map[string]string{
				"LOBBYD_CLIENT_IP_HEADER": "X-Forwarded-For",
				"LOBBYD_TRUSTED_PROXIES":  lbAddress, // nginx only, not the whole network
				"LOBBYD_ADMIN_ADDR":       ":9090",
				"LOBBYD_REDIS_URL":        "redis://redis:6379",
			} {
				if env[k] != want {
					t.Errorf("%s: %s is %q, want %q", name, k, env[k], want)
				}
			}
			for _, k := range []string{"LOBBYD_JWT_SECRET", "LOBBYD_ADMIN_TOKEN"} {
				if !strings.HasPrefix(env[k], "${"+k+":?") {
					t.Errorf("%s: %s is %q, want ${%s:?...} from .env", name, k, env[k], k)
				}
			}
			if cond := s.dependsOn()["redis"]; cond != "service_healthy" {
				t.Errorf("%s: depends_on redis with condition %q, want service_healthy", name, cond)
			}
			if _, ok := s.dependsOn()["fakeplayfab"]; ok {
				t.Errorf("%s: depends_on fakeplayfab, which the real-PlayFab override leaves out", name)
			}
			if hc := fmt.Sprint(s.Healthcheck["test"]); !strings.Contains(hc, "/readyz") {
				t.Errorf("%s: healthcheck %s does not ask /readyz", name, hc)
			}
		}
		sort.Strings(nodes)
		if !slices.Equal(nodes, []string{"lobbyd-1", "lobbyd-2"}) {
			t.Errorf("lobbyd nodes %v, want lobbyd-1 and lobbyd-2", nodes)
		}

		// Published: nginx on 8080 and node 1's admin on 9090, nothing else.
		var published []string
		for name, s := range base.Services {
			for _, p := range s.Ports {
				published = append(published, name+" "+fmt.Sprint(p))
			}
		}
		sort.Strings(published)
		if want := []string{"lb 127.0.0.1:8080:8080", "lobbyd-1 127.0.0.1:9090:9090"}; !slices.Equal(published, want) {
			t.Errorf("published ports %q, want %q", published, want)
		}

		// The load balancer and its configuration.
		lb := base.Services["lb"]
		if !strings.HasPrefix(lb.Image, "nginx:") {
			t.Errorf("lb: image %q is not nginx", lb.Image)
		}
		var conf string
		for _, m := range lb.mounts() {
			if m.bind && filepath.Clean(m.source) == composeLBConfigPath {
				conf = composeRead(t, m.source)
			}
		}
		if conf == "" {
			t.Fatalf("lb does not mount %s", composeLBConfigPath)
		}
		composeReport(t, composeLBConfigPath, nginxProblems(conf, nodes, "8080"))
	})

	t.Run("playfab override", func(t *testing.T) {
		if fake := merged.Services["fakeplayfab"]; fake == nil || len(fake.Profiles) == 0 {
			t.Errorf("%s does not leave the fake PlayFab out (profiles)", composePlayFabFile)
		}
		for _, name := range []string{"lobbyd-1", "lobbyd-2"} {
			env := merged.Services[name].env()
			for k, v := range env {
				if strings.Contains(v, "fakeplayfab") {
					t.Errorf("%s: %s=%s still points at the fake", name, k, v)
				}
			}
			if !strings.HasPrefix(env["LOBBYD_PLAYFAB_TITLE_ID"], "${") || !strings.HasPrefix(env["LOBBYD_PLAYFAB_SECRET_KEY"], "${") {
				t.Errorf("%s: the real title id and secret key do not come from .env", name)
			}
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		var targets []string
		for _, s := range base.Services {
			if _, dockerfile, target, ok := s.build(); ok && dockerfile == "Dockerfile" && target != "" && !slices.Contains(targets, target) {
				targets = append(targets, target)
			}
		}
		sort.Strings(targets)
		if !slices.Equal(targets, []string{"fakeplayfab", "lobbyd"}) {
			t.Errorf("compose builds targets %v, want fakeplayfab and lobbyd", targets)
		}
		text := composeRead(t, "Dockerfile")
		composeReport(t, "Dockerfile", dockerfileProblems(text, targets))
		stages := parseDockerfile(text)
		last := stages[len(stages)-1]
		if last.name != "lobbyd" {
			t.Errorf("the last stage (docker build's default) is %s, want lobbyd", last.name)
		}
		if !slices.Contains(last.instrs, dockerInstr{"EXPOSE", "8080"}) {
			t.Errorf("stage lobbyd does not EXPOSE 8080")
		}
		if !slices.ContainsFunc(last.instrs, func(in dockerInstr) bool {
			return in.cmd == "HEALTHCHECK" && strings.Contains(in.args, `"/healthcheck", "http://127.0.0.1:8080/readyz"`)
		}) {
			t.Errorf("stage lobbyd's HEALTHCHECK does not run /healthcheck on /readyz")
		}
		if !strings.Contains(text, "./cmd/healthcheck") {
			t.Errorf("the build does not make ./cmd/healthcheck")
		}
	})

	t.Run("env and ignore files", func(t *testing.T) {
		example := composeRead(t, composeEnvExample)
		composeReport(t, composeBaseFile, composeEnvExampleProblems(baseText, example, false))
		composeReport(t, composePlayFabFile, composeEnvExampleProblems(overText, example, true))
		for _, line := range strings.Split(example, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && !strings.HasPrefix(line, "#") && composeSecretName.MatchString(k) && v != "" {
				t.Errorf("%s: %s has a value: the example must not carry a secret", composeEnvExample, k)
			}
		}
		if !strings.Contains(example, "openssl rand -hex 32") {
			t.Errorf("%s does not say how to make a secret (openssl rand -hex 32)", composeEnvExample)
		}
		ignores := func(file, entry string) bool {
			return slices.ContainsFunc(strings.Split(composeRead(t, file), "\n"), func(l string) bool {
				return strings.TrimSpace(l) == entry || strings.TrimSpace(l) == "/"+entry
			})
		}
		for _, c := range []struct{ file, entry string }{
			{".gitignore", composeEnvFile},
			{".dockerignore", composeEnvFile},
			{".dockerignore", ".git"},
		} {
			if !ignores(c.file, c.entry) {
				t.Errorf("%s does not list %s", c.file, c.entry)
			}
		}
	})
}

// TestComposeChecksFail shows that the checks above catch what they are
// for: each case breaks a good file in one way.
func TestComposeChecksFail(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "lb.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const good = `
x-node: &node
  build: {context: ., target: lobbyd}
  restart: unless-stopped
  healthcheck: {test: ["CMD", "/healthcheck", "http://127.0.0.1:8080/readyz"]}
  depends_on: {redis: {condition: service_healthy}}
services:
  redis:
    image: redis:7
    command: ["redis-server", "--appendonly", "yes"]
    restart: unless-stopped
    healthcheck: {test: ["CMD", "redis-cli", "ping"]}
    volumes: ["data:/data"]
  lobbyd-1:
    <<: *node
    environment:
      LOBBYD_JWT_SECRET: "${LOBBYD_JWT_SECRET:?set it in .env}"
      LOBBYD_ADMIN_TOKEN: ${LOBBYD_ADMIN_TOKEN}
      LOBBYD_JWT_SECRET_FILE: /run/secrets/jwt
    ports: ["127.0.0.1:9090:9090"]
  lb:
    image: nginx:1.28-alpine
    volumes: ["./lb.conf:/etc/nginx/conf.d/default.conf:ro"]
    ports: ["127.0.0.1:8080:8080", {target: 8443, published: 8443, host_ip: 127.0.0.1}]
  fake:
    image: fake
    profiles: [fake]
    command: ["fakeplayfab", "-secret-key", "${FAKE_KEY:?}"]
volumes:
  data:
`
	check := func(t *testing.T, text string) []string {
		t.Helper()
		cf, err := parseCompose([]byte(text))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return composeProblems(cf, dir)
	}
	if problems := check(t, good); len(problems) != 0 {
		t.Fatalf("the good file has problems: %q", problems)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"port on every interface", `"127.0.0.1:8080:8080"`, `"0.0.0.0:8080:8080"`, `"0.0.0.0:8080:8080" is published on 0.0.0.0`},
		{"port without host", `"127.0.0.1:8080:8080"`, `"8080:8080"`, "published on every interface"},
		{"bare port", `"127.0.0.1:8080:8080"`, `8080`, "published on every interface"},
		{"IPv6 wildcard", `"127.0.0.1:8080:8080"`, `"[::]:8080:8080"`, "published on ::"},
		{"long syntax without host", `host_ip: 127.0.0.1`, `protocol: tcp`, "published on every interface"},
		{"host network", `image: nginx:1.28-alpine`, "image: nginx:1.28-alpine\n    network_mode: host", "network_mode: host"},
		{"literal secret", `"${LOBBYD_JWT_SECRET:?set it in .env}"`, `compose-dev-secret-compose-dev-secret`, "LOBBYD_JWT_SECRET has a value written in the file"},
		{"secret with a default", `"${LOBBYD_JWT_SECRET:?set it in .env}"`, `"${LOBBYD_JWT_SECRET:-compose-dev-secret}"`, "LOBBYD_JWT_SECRET has a value written in the file"},
		{"secret in list syntax", "environment:\n      LOBBYD_JWT_SECRET: \"${LOBBYD_JWT_SECRET:?set it in .env}\"\n      LOBBYD_ADMIN_TOKEN: ${LOBBYD_ADMIN_TOKEN}\n      LOBBYD_JWT_SECRET_FILE: /run/secrets/jwt",
			"environment: [\"LOBBYD_ADMIN_TOKEN=0123456789abcdef0123456789abcdef\"]", "LOBBYD_ADMIN_TOKEN has a value written in the file"},
		{"secret in a command flag", `"-secret-key", "${FAKE_KEY:?}"`, `"-secret-key", "fake-secret"`, "flag -secret-key has a secret"},
		{"secret in a flag=value", `"-secret-key", "${FAKE_KEY:?}"`, `"--secret-key=fake-secret"`, "flag --secret-key=fake-secret has a secret"},
		{"no healthcheck", `  healthcheck: {test: ["CMD", "/healthcheck", "http://127.0.0.1:8080/readyz"]}` + "\n", "", "lobbyd-1: has no healthcheck"},
		{"healthcheck disabled", `healthcheck: {test: ["CMD", "redis-cli", "ping"]}`, `healthcheck: {disable: true}`, "redis: has no healthcheck"},
		{"no restart policy", "    restart: unless-stopped\n    healthcheck: {test: [\"CMD\", \"redis-cli\"", "    healthcheck: {test: [\"CMD\", \"redis-cli\"", `redis: restart policy ""`},
		{"restart no", "  restart: unless-stopped\n  healthcheck: {test: [\"CMD\", \"/healthcheck\"", "  restart: \"no\"\n  healthcheck: {test: [\"CMD\", \"/healthcheck\"", `lobbyd-1: restart policy "no"`},
		{"depends on an optional service", `depends_on: {redis: {condition: service_healthy}}`, `depends_on: [redis, fake]`, "depends_on fake, which is optional"},
		{"depends on a missing service", `depends_on: {redis: {condition: service_healthy}}`, `depends_on: [redis, fakeplayfab]`, "depends_on fakeplayfab, which is not a service"},
		{"missing build context", `context: .`, `context: ./nowhere`, "build context ./nowhere is not a directory"},
		{"missing Dockerfile", `context: .,`, `context: ., dockerfile: Dockerfile.prod,`, "Dockerfile.prod is missing"},
		{"missing bind mount", `./lb.conf:`, `./deploy/nginx/nope.conf:`, "mounts ./deploy/nginx/nope.conf, which does not exist"},
		{"undeclared volume", "volumes:\n  data:\n", "", "mounts volume data, which is not declared"},
		{"missing env file", `image: fake`, "image: fake\n    env_file: deploy/fake.env", "env_file deploy/fake.env does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the good file has no %q", tc.old)
			}
			problems := check(t, strings.Replace(good, tc.old, tc.new, 1))
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem %q among %q", tc.want, problems)
			}
		})
	}

	t.Run("override", func(t *testing.T) {
		base, err := parseCompose([]byte(good))
		if err != nil {
			t.Fatal(err)
		}
		// Moving a service that a node depends on into a profile breaks
		// the merged file.
		over, err := parseCompose([]byte("services:\n  redis:\n    profiles: [extra]\n  lb:\n    ports: [\"9999:9999\"]\n"))
		if err != nil {
			t.Fatal(err)
		}
		problems := composeProblems(mergeCompose(base, over), dir)
		for _, want := range []string{"depends_on redis, which is optional", `port "9999:9999" is published on every interface`} {
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
				t.Errorf("no problem %q among %q", want, problems)
			}
		}
	})

	t.Run("env example", func(t *testing.T) {
		compose := "x: ${A:?set A}\ny: ${B:-1}\nz: ${C}\n# ${D:?} in a comment\n"
		if p := composeEnvExampleProblems(compose, "A=\n# B=1\nC=\n", false); len(p) != 0 {
			t.Errorf("good example: %q", p)
		}
		p := composeEnvExampleProblems(compose, "# A=\nC=\n", false)
		for _, want := range []string{"requires ${A}", "reads ${B}"} {
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
				t.Errorf("no problem %q among %q", want, p)
			}
		}
		if p := composeEnvExampleProblems(compose, "# A=\n# B=\nC=\n", true); len(p) != 0 {
			t.Errorf("an override's variable may be commented: %q", p)
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		const goodDockerfile = `
ARG GO_VERSION=1.26.8
FROM golang:${GO_VERSION}-bookworm AS build
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
    -o /out/ ./cmd/lobbyd ./cmd/healthcheck
FROM gcr.io/distroless/static-debian12:nonroot AS lobbyd
COPY --from=build /out/lobbyd /out/healthcheck /
USER nonroot:nonroot
HEALTHCHECK --interval=10s \
    CMD ["/healthcheck", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/lobbyd"]
`
		targets := []string{"lobbyd"}
		if p := dockerfileProblems(goodDockerfile, targets); len(p) != 0 {
			t.Fatalf("the good Dockerfile has problems: %q", p)
		}
		for _, tc := range []struct{ name, old, new, want string }{
			{"no USER", "USER nonroot:nonroot\n", "", "stage lobbyd has no USER"},
			{"USER root", "USER nonroot:nonroot", "USER root", "runs as root (USER root)"},
			{"USER 0", "USER nonroot:nonroot", "USER 0:0", "runs as root (USER 0:0)"},
			{"no HEALTHCHECK", "HEALTHCHECK --interval=10s \\\n    CMD", "CMD", "stage lobbyd has no HEALTHCHECK"},
			{"HEALTHCHECK NONE", "HEALTHCHECK --interval=10s \\\n    CMD [\"/healthcheck\", \"http://127.0.0.1:8080/readyz\"]", "HEALTHCHECK NONE", "stage lobbyd has no HEALTHCHECK"},
			{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot AS lobbyd\nCOPY --from=build /out/lobbyd /out/healthcheck /\n", "", "not multi-stage"},
			{"unnamed stage", "AS lobbyd", "", "has no name"},
			{"unpinned image", "static-debian12:nonroot", "static-debian12", "is not pinned"},
			{"latest image", "static-debian12:nonroot", "static-debian12:latest", "is not pinned"},
			{"sources before modules", "COPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\n", "COPY . .\nRUN go mod download\n", "modules are not downloaded"},
			{"cgo", "CGO_ENABLED=0 ", "", "without CGO_ENABLED=0"},
			{"missing target", "AS lobbyd", "AS server", "no stage lobbyd"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !strings.Contains(goodDockerfile, tc.old) {
					t.Fatalf("the good Dockerfile has no %q", tc.old)
				}
				p := dockerfileProblems(strings.Replace(goodDockerfile, tc.old, tc.new, 1), targets)
				if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
					t.Errorf("no problem %q among %q", tc.want, p)
				}
			})
		}
	})

	t.Run("nginx", func(t *testing.T) {
		const goodConf = `
map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
upstream lobbyd {
    server lobbyd-1:8080 max_fails=3 fail_timeout=10s;
    server lobbyd-2:8080 max_fails=3 fail_timeout=10s;  # comment
}
server {
    listen 8080;
    location / {
        proxy_pass http://lobbyd;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_read_timeout 2m;
    }
}
`
		nodes := []string{"lobbyd-1", "lobbyd-2"}
		if p := nginxProblems(goodConf, nodes, "8080"); len(p) != 0 {
			t.Fatalf("the good config has problems: %q", p)
		}
		for _, tc := range []struct{ name, old, new, want string }{
			{"node missing", "    server lobbyd-2:8080 max_fails=3 fail_timeout=10s;  # comment\n", "", "no upstream server lobbyd-2:8080"},
			{"no passive check", "lobbyd-1:8080 max_fails=3 fail_timeout=10s", "lobbyd-1:8080", "lobbyd-1 has no passive health check"},
			{"HTTP/1.0", "proxy_http_version 1.1;", "", "no proxy_http_version 1.1"},
			{"no Upgrade", "proxy_set_header Upgrade $http_upgrade;", "# proxy_set_header Upgrade $http_upgrade;", "no proxy_set_header Upgrade"},
			{"Connection close", "Connection $connection_upgrade", "Connection close", "no proxy_set_header Connection"},
			{"no map", "map $http_upgrade", "map $http_connection", "no map $http_upgrade"},
			{"no X-Forwarded-For", "proxy_set_header X-Forwarded-For $remote_addr;", "", "no proxy_set_header X-Forwarded-For"},
			{"default read timeout", "proxy_read_timeout 2m;", "", "no proxy_read_timeout"},
			{"short read timeout", "proxy_read_timeout 2m;", "proxy_read_timeout 60s;", "1m0s is not above"},
			{"wrong port", "listen 8080;", "listen 80;", "no listen 8080"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !strings.Contains(goodConf, tc.old) {
					t.Fatalf("the good config has no %q", tc.old)
				}
				p := nginxProblems(strings.Replace(goodConf, tc.old, tc.new, 1), nodes, "8080")
				if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
					t.Errorf("no problem %q among %q", tc.want, p)
				}
			})
		}
	})
}
