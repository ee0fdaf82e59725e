package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is issue 17's requirement: p99 at most this at 5,000 results/s.
const target = 50 * time.Millisecond

// report is a run's figures. Durations in milliseconds, CPU in seconds.
type report struct {
	Config  config    `json:"config"`
	Started time.Time `json:"started"`
	Host    host      `json:"host"`

	// Window is the measured part of the run: the matches started after
	// the warm-up. Its results are timed; CPU is counted over it, from its
	// first MatchReady call to the reception of its last frame.
	WindowSec     float64 `json:"windowSec"`
	Matches       int     `json:"matches"`
	Results       int     `json:"results"`       // frames sent in the window (4 per successful call)
	SentRate      float64 `json:"sentRate"`      // results/s started, first to last call of the window
	DeliveredRate float64 `json:"deliveredRate"` // window's frames received / (last reception − first call)

	// Latency is from the start of a MatchReady call to the reception of
	// the frame by the player's socket, for the window's frames received.
	Latency dist `json:"latencyMs"`
	// Call is how long the MatchReady calls took (the allocator's side:
	// copies, presence, publishes); Lag is how late the calls started on
	// their schedule (a bench that keeps up stays within a tick).
	Call dist `json:"callMs"`
	Lag  dist `json:"lagMs"`
	// With -tap, Latency split at the moment the node's message reached
	// the bench's own subscription: ToPublish is call start → published,
	// FromPublish published → socket (per frame, for the frames both saw).
	ToPublish   *dist `json:"toPublishMs,omitempty"`
	FromPublish *dist `json:"fromPublishMs,omitempty"`

	// Seconds is Latency by second of the window (by call start): where
	// in the run the tail is.
	Seconds []second `json:"seconds"`

	// Over the whole run, warm-up included: frames expected (4 per
	// successful call) and never received within -grace, received twice
	// on one socket, or of no match of this run.
	Expected     int64            `json:"expected"`
	Lost         int64            `json:"lost"`
	Duplicates   int64            `json:"duplicates"`
	Unknown      int64            `json:"unknown"`
	CallErrors   map[string]int64 `json:"callErrors,omitempty"`
	OtherFrames  map[string]int64 `json:"otherFrames,omitempty"`
	SocketsEnded map[string]int64 `json:"socketsEnded,omitempty"`
	MaxInFlight  int64            `json:"maxInFlight"`

	CPU      cpuFigures `json:"cpu"`
	Problems []string   `json:"problems,omitempty"`
	// MeetsTarget: p99 ≤ 50 ms, the rate sustained (≥ 98% of -rate),
	// nothing lost or duplicated.
	MeetsTarget bool `json:"meetsTarget"`
}

type second struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type host struct {
	CPUs          int    `json:"cpus"`
	LoadAvgBefore string `json:"loadAvgBefore"`
}

// dist summarizes durations, in milliseconds.
type dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func distOf(ns []int64) dist {
	if len(ns) == 0 {
		return dist{}
	}
	slices.Sort(ns)
	q := func(p float64) float64 {
		i := int(p*float64(len(ns))+0.999999) - 1 // nearest rank
		return ms(ns[max(0, min(i, len(ns)-1))])
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return dist{N: len(ns), Mean: sum / float64(len(ns)) / 1e6, P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: ms(ns[len(ns)-1])}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

type cpuFigures struct {
	// Seconds of CPU over the window: each node, their sum, redis-server
	// (used_cpu_user + used_cpu_sys: the whole server, so other clients'
	// work too) and this process (the allocator's side and the sockets'
	// readers).
	Nodes []float64 `json:"nodes"`
	Node  float64   `json:"nodeTotal"`
	Redis float64   `json:"redis"`
	Bench float64   `json:"bench"`
	// Machine is the CPU seconds all processes used (/proc/stat busy
	// time) out of MachineAll (window × cores); Others is Machine less
	// the nodes, Redis and the bench: what else ran on the machine.
	Machine    float64 `json:"machine"`
	MachineAll float64 `json:"machineAll"`
	Others     float64 `json:"others"`
	// Pressure is the share of the window during which some runnable
	// task waited for a CPU (Linux PSI, /proc/pressure/cpu "some"; -1:
	// unknown): how much the machine was contended.
	Pressure float64 `json:"pressure"`
	// Per result received in the window, in microseconds.
	NodeUsPerResult  float64 `json:"nodeUsPerResult"`
	RedisUsPerResult float64 `json:"redisUsPerResult"`
	BenchUsPerResult float64 `json:"benchUsPerResult"`
	// RedisCommands is Redis's time by command over the window, most
	// first (INFO commandstats; the whole server).
	RedisCommands []redisCommand `json:"redisCommands"`
}

type redisCommand struct {
	Name      string  `json:"name"`
	Calls     int64   `json:"calls"`
	Sec       float64 `json:"sec"`
	UsPerCall float64 `json:"usPerCall"`
}

type cmdStat struct{ calls, usec int64 }

// parseRedisInfo reads used_cpu_user + used_cpu_sys and the commandstats
// of INFO.
func parseRedisInfo(info string) (cpu float64, cmds map[string]cmdStat) {
	cmds = map[string]cmdStat{}
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			var c cmdStat
			for field := range strings.SplitSeq(v, ",") {
				name, val, _ := strings.Cut(field, "=")
				n, _ := strconv.ParseInt(val, 10, 64)
				switch name {
				case "calls":
					c.calls = n
				case "usec":
					c.usec = n
				}
			}
			cmds[strings.TrimPrefix(k, "cmdstat_")] = c
		}
	}
	return cpu, cmds
}

// report computes the figures of a run: matches from firstMeasured on
// are the window.
func (b *bench) report(firstMeasured int, sched func(int) time.Duration, start time.Duration, begin, end snapshot) *report {
	cfg, rec := b.cfg, b.rec
	total := len(rec.sent)
	rep := &report{Config: cfg, Started: time.Now().Add(-time.Duration(rec.now())), Host: host{CPUs: numCPU, LoadAvgBefore: b.loadAvg}}
	var lat, call, lag, toPub, fromPub []int64
	var bySecond [][]int64
	var firstSent, lastSent, lastRecv int64
	for k := range total {
		sent, endAt := rec.sent[k].Load(), b.callEnd[k].Load()
		if sent == 0 {
			continue
		}
		measured := k >= firstMeasured
		if measured {
			lag = append(lag, sent-int64(start+sched(k)))
			if firstSent == 0 {
				firstSent = sent
			}
			lastSent = sent
			rep.Matches++
		}
		if endAt <= 0 {
			continue // failed: counted in CallErrors
		}
		rep.Expected += playersPerMatch
		if measured {
			call = append(call, endAt-sent)
			rep.Results += playersPerMatch
		}
		for j := range playersPerMatch {
			at := rec.recv[k*playersPerMatch+j].Load()
			if at == 0 {
				rep.Lost++
				continue
			}
			if measured {
				lat = append(lat, at-sent)
				lastRecv = max(lastRecv, at)
				sec := int((sent - firstSent) / int64(time.Second))
				for len(bySecond) <= sec {
					bySecond = append(bySecond, nil)
				}
				bySecond[sec] = append(bySecond[sec], at-sent)
				if b.tap != nil {
					node := rec.matchPlayer(k, j) % len(b.nodes)
					if pub := b.tap.seen[k*len(b.nodes)+node].Load(); pub > 0 {
						toPub, fromPub = append(toPub, pub-sent), append(fromPub, at-pub)
					}
				}
			}
		}
	}
	rep.Latency, rep.Call, rep.Lag = distOf(lat), distOf(call), distOf(lag)
	for _, l := range bySecond {
		d := distOf(l)
		rep.Seconds = append(rep.Seconds, second{N: d.N, P50: d.P50, P99: d.P99, Max: d.Max})
	}
	if b.tap != nil {
		to, from := distOf(toPub), distOf(fromPub)
		rep.ToPublish, rep.FromPublish = &to, &from
	}
	if lastSent > firstSent && rep.Matches > 1 {
		rep.SentRate = float64((rep.Matches-1)*playersPerMatch) / (float64(lastSent-firstSent) / 1e9)
	}
	if lastRecv > firstSent {
		rep.DeliveredRate = float64(len(lat)) / (float64(lastRecv-firstSent) / 1e9)
	}
	rep.Duplicates, rep.Unknown = rec.dups.Load(), rec.unknown.Load()
	b.errMu.Lock()
	rep.CallErrors = maps.Clone(b.errs)
	b.errMu.Unlock()
	rec.mu.Lock()
	rep.OtherFrames, rep.SocketsEnded = maps.Clone(rec.others), maps.Clone(rec.ended)
	rec.mu.Unlock()
	if len(rep.OtherFrames) == 0 {
		rep.OtherFrames = nil
	}
	if len(rep.SocketsEnded) == 0 {
		rep.SocketsEnded = nil
	}
	if len(rep.CallErrors) == 0 {
		rep.CallErrors = nil
	}

	// CPU over the window.
	if begin.at > 0 && end.at > begin.at {
		rep.WindowSec = float64(end.at-begin.at) / 1e9
		c := &rep.CPU
		for i := range end.nodes {
			d := end.nodes[i] - begin.nodes[i]
			c.Nodes = append(c.Nodes, d)
			c.Node += d
		}
		c.Redis, c.Bench = end.redis-begin.redis, end.bench-begin.bench
		if end.all > begin.all {
			c.Machine, c.MachineAll = end.busy-begin.busy, end.all-begin.all
			c.Others = max(0, c.Machine-c.Node-c.Redis-c.Bench)
		}
		c.Pressure = -1
		if begin.stall >= 0 && end.stall >= begin.stall {
			c.Pressure = float64(end.stall-begin.stall) / float64(end.at-begin.at)
		}
		if n := float64(len(lat)); n > 0 {
			c.NodeUsPerResult, c.RedisUsPerResult, c.BenchUsPerResult = c.Node/n*1e6, c.Redis/n*1e6, c.Bench/n*1e6
		}
		for name, e := range end.cmdstats {
			s := begin.cmdstats[name]
			if e.calls <= s.calls {
				continue
			}
			rc := redisCommand{Name: name, Calls: e.calls - s.calls, Sec: float64(e.usec-s.usec) / 1e6}
			rc.UsPerCall = float64(e.usec-s.usec) / float64(rc.Calls)
			c.RedisCommands = append(c.RedisCommands, rc)
		}
		slices.SortFunc(c.RedisCommands, func(a, b redisCommand) int { return cmp.Compare(b.Sec, a.Sec) })
	} else {
		rep.Problems = append(rep.Problems, "no CPU window (counters could not be read)")
	}

	if rep.Lost > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d frames lost", rep.Lost))
	}
	if rep.Duplicates > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d frames received twice", rep.Duplicates))
	}
	if rep.SentRate < 0.98*cfg.Rate {
		rep.Problems = append(rep.Problems, fmt.Sprintf("rate not sustained: %.0f of %.0f results/s", rep.SentRate, cfg.Rate))
	}
	rep.MeetsTarget = len(rep.Problems) == 0 && rep.Latency.N > 0 && rep.Latency.P99 <= ms(int64(target))
	return rep
}

func (r *report) writeText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "deliverybench %s: %d nodes, %d players, %.0f results/s (%.1f matches/s of %d), %v measured after %v warm-up\n",
		r.Started.UTC().Format(time.RFC3339), c.Nodes, c.Players, c.Rate, c.Rate/playersPerMatch, playersPerMatch, c.Duration, c.Warmup)
	fmt.Fprintf(w, "host: %d CPUs, load average before %s\n", r.Host.CPUs, r.Host.LoadAvgBefore)
	fmt.Fprintf(w, "window: %d matches, %d results in %.2fs; sent %.0f results/s, delivered %.0f/s\n",
		r.Matches, r.Results, r.WindowSec, r.SentRate, r.DeliveredRate)
	row := func(name string, d dist) {
		fmt.Fprintf(w, "  %-28s n=%-7d mean %7.2f  p50 %7.2f  p90 %7.2f  p99 %7.2f  p99.9 %7.2f  max %7.2f ms\n",
			name, d.N, d.Mean, d.P50, d.P90, d.P99, d.P999, d.Max)
	}
	row("call start → socket", r.Latency)
	row("MatchReady call", r.Call)
	row("call start lag on schedule", r.Lag)
	if r.ToPublish != nil {
		row("call start → published (tap)", *r.ToPublish)
		row("published (tap) → socket", *r.FromPublish)
	}
	if len(r.Seconds) > 0 {
		var p99s []string
		for _, s := range r.Seconds {
			p99s = append(p99s, fmt.Sprintf("%.0f", s.P99))
		}
		fmt.Fprintf(w, "  p99 by second of the window (ms): %s\n", strings.Join(p99s, " "))
	}
	fmt.Fprintf(w, "frames (whole run): expected %d, lost %d, duplicates %d, unknown %d; calls in flight at most %d\n",
		r.Expected, r.Lost, r.Duplicates, r.Unknown, r.MaxInFlight)
	for _, m := range []struct {
		name string
		m    map[string]int64
	}{{"MatchReady errors", r.CallErrors}, {"other frames", r.OtherFrames}, {"sockets ended", r.SocketsEnded}} {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			fmt.Fprintf(w, "  %s: %d × %s\n", m.name, m.m[k], k)
		}
	}
	cpu := r.CPU
	if r.WindowSec > 0 {
		var nodes []string
		for i, v := range cpu.Nodes {
			nodes = append(nodes, fmt.Sprintf("node %d %.2fs (%.0f%%)", i, v, 100*v/r.WindowSec))
		}
		fmt.Fprintf(w, "CPU over %.2fs: %s; nodes %.2fs = %.1f µs/result; redis %.2fs (%.0f%%) = %.1f µs/result; bench %.2fs (%.0f%%) = %.1f µs/result\n",
			r.WindowSec, strings.Join(nodes, ", "), cpu.Node, cpu.NodeUsPerResult,
			cpu.Redis, 100*cpu.Redis/r.WindowSec, cpu.RedisUsPerResult, cpu.Bench, 100*cpu.Bench/r.WindowSec, cpu.BenchUsPerResult)
		if cpu.MachineAll > 0 {
			fmt.Fprintf(w, "machine: %.2f of %.2f CPU-seconds busy (%.0f%%); other processes %.2fs; some task waiting for a CPU %.0f%% of the time\n",
				cpu.Machine, cpu.MachineAll, 100*cpu.Machine/cpu.MachineAll, cpu.Others, 100*cpu.Pressure)
		}
		var cmds []string
		for _, rc := range cpu.RedisCommands[:min(6, len(cpu.RedisCommands))] {
			cmds = append(cmds, fmt.Sprintf("%s %d calls %.2fs (%.1f µs/call)", rc.Name, rc.Calls, rc.Sec, rc.UsPerCall))
		}
		fmt.Fprintf(w, "redis commands: %s\n", strings.Join(cmds, "; "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	verdict := "no"
	if r.MeetsTarget {
		verdict = "yes"
	}
	fmt.Fprintf(w, "p99 ≤ %v at this rate, nothing lost: %s\n", target, verdict)
}

// loadAvg is /proc/loadavg's first three figures, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// machineCPUSeconds reads the machine's busy and total CPU time, summed
// over its cores, from /proc/stat (zeros elsewhere).
func machineCPUSeconds() (busy, all float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal (guest time is in user).
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseFloat(v, 64)
		all += n
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	const hz = 100 // USER_HZ
	return busy / hz, all / hz
}

// cpuStall reads the "some" total of /proc/pressure/cpu, or -1.
func cpuStall() time.Duration {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return time.Duration(us) * time.Microsecond
		}
	}
	return -1
}
