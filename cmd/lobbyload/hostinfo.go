package main

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// hostInfo describes the machine lobbyload ran on: what its figures (and,
// when lobbyd ran there too, lobbyd's) depend on.
type hostInfo struct {
	Hostname   string `json:"hostname"`
	OS         string `json:"os"` // GOOS/GOARCH and the distribution and kernel, where known
	CPUModel   string `json:"cpuModel,omitempty"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemoryMiB  int64  `json:"memoryMiB,omitempty"`
	GoVersion  string `json:"goVersion"`
	// ServerLocal says lobbyd's URL (every one of -url) is a loopback
	// address: lobbyd shared this machine (and its CPUs) with the
	// generator.
	ServerLocal bool `json:"serverOnThisHost"`
}

// buildInfo is what is known of the code under test.
type buildInfo struct {
	// Revision and Modified are lobbyload's own VCS stamp (go build in a
	// checkout stamps it; go run does not).
	Revision string `json:"lobbyloadRevision,omitempty"`
	Modified bool   `json:"lobbyloadModified,omitempty"`
	// WorkdirCommit is the commit checked out in the directory lobbyload
	// ran in, if it is a git work tree (loadtest.sh runs it from the
	// checkout it built lobbyd from); WorkdirDirty says tracked files
	// differ from it.
	WorkdirCommit string `json:"workdirCommit,omitempty"`
	WorkdirDirty  bool   `json:"workdirDirty,omitempty"`
}

func readHostInfo(serverURLs []string) *hostInfo {
	h := &hostInfo{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	h.Hostname, _ = os.Hostname()
	if runtime.GOOS == "linux" {
		if name := osRelease(); name != "" {
			h.OS += ", " + name
		}
		if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
			h.OS += ", kernel " + strings.TrimSpace(string(b))
		}
		h.CPUModel = procField("/proc/cpuinfo", "model name")
		if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
			h.MemoryMiB = kb / 1024
		}
	}
	h.ServerLocal = len(serverURLs) > 0
	for _, s := range serverURLs {
		local := false
		if u, err := url.Parse(s); err == nil {
			host := u.Hostname()
			ip := net.ParseIP(host)
			local = host == "localhost" || (ip != nil && ip.IsLoopback())
		}
		h.ServerLocal = h.ServerLocal && local
	}
	return h
}

// procField is the first "key: value" line's value for key in a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// osRelease is the distribution's PRETTY_NAME.
func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func readBuildInfo() *buildInfo {
	b := &buildInfo{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		b.WorkdirCommit = strings.TrimSpace(string(out))
		// Untracked files are left out: a report written into the
		// checkout would make it dirty. --no-optional-locks: status must
		// not take the index lock from whoever works in the checkout.
		if out, err := exec.CommandContext(ctx, "git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
			b.WorkdirDirty = len(strings.TrimSpace(string(out))) > 0
		}
	}
	return b
}
