package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// series is what the run looked like over time: the generator's counters
// and lobbyd's /metrics, sampled every -sample-interval from the start of
// the run to its end.
type series struct {
	IntervalSec float64 `json:"intervalSeconds"`
	// QueueDepthSource says where the queue depth came from:
	// lobbyd_queue_depth of the node leading the queue (refreshed by every
	// formation pass), or GET /v1/queues (a copy at most a second old),
	// or both at different times.
	QueueDepthSource string   `json:"queueDepthSource,omitempty"`
	Samples          []sample `json:"samples"`
}

// sample is one reading. Counters (matched, CPU seconds) are cumulative, so
// a rate over any span is the difference of two samples; gauges are the
// value at the time. A figure that could not be read is absent.
type sample struct {
	// AtSec is seconds since the start of the run (not the barrier).
	AtSec float64 `json:"atSeconds"`

	// The generator's own counts: sockets open now, players searching
	// (queued, no match.ready yet) and matched so far.
	Open      int64 `json:"openSockets"`
	Searching int64 `json:"searching"`
	Matched   int64 `json:"matched"`
	// LoadCPUSec is lobbyload's own CPU so far; HostBusySec the CPU time
	// every process of the generator's host has spent (Linux: /proc/stat).
	LoadCPUSec  *float64 `json:"lobbyloadCpuSeconds,omitempty"`
	HostBusySec *float64 `json:"hostBusySeconds,omitempty"`

	// From lobbyd's /metrics: process_cpu_seconds_total,
	// process_resident_memory_bytes, lobbyd_connections and
	// lobbyd_matches_formed_total of the queue.
	ServerCPUSec  *float64 `json:"serverCpuSeconds,omitempty"`
	ServerRSS     *float64 `json:"serverRssBytes,omitempty"`
	ServerConns   *float64 `json:"serverConnections,omitempty"`
	MatchesFormed *float64 `json:"serverMatchesFormed,omitempty"`
	// QueueDepth is the queue's searching tickets (a lobby is one ticket).
	QueueDepth *float64 `json:"queueDepth,omitempty"`
	// RedisCPUSec is Redis's CPU so far (INFO cpu), with -redis-url.
	RedisCPUSec *float64 `json:"redisCpuSeconds,omitempty"`
}

// Where the queue depth of a sample came from.
const (
	depthFromLeader = "lobbyd_queue_depth (the queue's leader, as of its last formation pass: at least once a second)"
	depthFromQueues = "GET /v1/queues (a copy at most 1 s old)"
)

// startSampler samples every -sample-interval, from now until the returned
// func is called, which returns the series.
func (l *load) startSampler(ctx context.Context) (stop func() series) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan series, 1)
	go func() {
		s := series{IntervalSec: l.cfg.SampleInterval.Seconds()}
		sources := map[string]bool{}
		take := func() {
			smp, source := l.sample(ctx)
			if ctx.Err() != nil && len(s.Samples) > 0 {
				return // cut short by stop: keep the samples whole
			}
			if source != "" {
				sources[source] = true
			}
			s.Samples = append(s.Samples, smp)
		}
		take()
		ticker := time.NewTicker(l.cfg.SampleInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				switch {
				case sources[depthFromLeader] && sources[depthFromQueues]:
					s.QueueDepthSource = depthFromLeader + " and " + depthFromQueues
				case sources[depthFromLeader]:
					s.QueueDepthSource = depthFromLeader
				case sources[depthFromQueues]:
					s.QueueDepthSource = depthFromQueues
				}
				out <- s
				return
			case <-ticker.C:
				take()
			}
		}
	}()
	return func() series {
		cancel()
		s := <-out
		// One last sample at the end, after the sampler's last.
		final, _ := l.sample(context.WithoutCancel(ctx))
		s.Samples = append(s.Samples, final)
		return s
	}
}

// sample reads the generator's counters, lobbyd's /metrics and, with
// -redis-url, Redis's CPU. It returns where the queue depth came from.
func (l *load) sample(ctx context.Context) (sample, string) {
	ctx, cancel := context.WithTimeout(ctx, min(max(l.cfg.SampleInterval, time.Second), 5*time.Second))
	defer cancel()
	now := time.Now()
	s := sample{
		AtSec:     now.Sub(l.start).Seconds(),
		Open:      l.open.Load(),
		Searching: l.searching.Load(),
		Matched:   l.matched.Load(),
	}
	if v, ok := processCPUSeconds(); ok {
		v += l.workersCPU() // with -procs
		s.LoadCPUSec = &v
	}
	if v, ok := hostBusySeconds(); ok {
		s.HostBusySec = &v
	}
	source := ""
	// With several -url, lobbyd's figures are the sums over the nodes
	// that answered, and the queue depth is its leader's.
	q := promLabel("queue", l.cfg.Queue)
	add := func(sum **float64, v *float64) {
		if v == nil {
			return
		}
		if *sum == nil {
			*sum = new(float64)
		}
		**sum += *v
	}
	for _, m := range l.allMetrics(ctx) {
		if m == nil {
			continue
		}
		add(&s.ServerCPUSec, m.get("process_cpu_seconds_total"))
		add(&s.ServerRSS, m.get("process_resident_memory_bytes"))
		add(&s.ServerConns, m.get("lobbyd_connections"))
		formed := m.get("lobbyd_matches_formed_total" + q)
		lead := m.get("lobbyd_queue_leader" + q)
		if formed == nil && lead != nil {
			// The counter of a queue appears with its first match.
			formed = new(float64)
		}
		add(&s.MatchesFormed, formed)
		if lead != nil && *lead == 1 && s.QueueDepth == nil {
			if s.QueueDepth = m.get("lobbyd_queue_depth" + q); s.QueueDepth != nil {
				source = depthFromLeader
			}
		}
	}
	if s.QueueDepth == nil {
		if d, err := l.queueDepth(ctx); err == nil {
			s.QueueDepth, source = &d, depthFromQueues
		}
	}
	if l.rdb != nil {
		if info, err := l.rdb.Info(ctx, "cpu").Result(); err == nil {
			if v, err := redisCPU(info); err == nil {
				s.RedisCPUSec = &v
			}
		}
	}
	return s, source
}

// promSamples are the unlabelled and labelled samples of a Prometheus text
// exposition, by their series as written: name or name{labels}.
type promSamples map[string]float64

func (m promSamples) get(series string) *float64 {
	if v, ok := m[series]; ok {
		return &v
	}
	return nil
}

// promLabel is a one-label selector as the text format writes it.
func promLabel(name, value string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return "{" + name + `="` + r.Replace(value) + `"}`
}

// allMetrics reads the /metrics of the lobbyd at each URL of -url, at
// once; a node that did not answer has nil.
func (l *load) allMetrics(ctx context.Context) []promSamples {
	out := make([]promSamples, len(l.cfg.URLs))
	var wg sync.WaitGroup
	for u := range l.cfg.URLs {
		wg.Go(func() { out[u], _ = l.metrics(ctx, u) })
	}
	wg.Wait()
	return out
}

// get GETs path of the lobbyd at URL u and returns the body of a 200
// answer (the caller closes it); any other status is an error.
func (l *load) get(ctx context.Context, u int, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cfg.URLs[u]+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// metrics reads the /metrics of the lobbyd at URL u.
func (l *load) metrics(ctx context.Context, u int) (promSamples, error) {
	body, err := l.get(ctx, u, "/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return parseProm(body)
}

// parseProm reads the samples of the Prometheus text format (histogram
// buckets and other series with several labels included, as written).
func parseProm(r io.Reader) (promSamples, error) {
	out := promSamples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the labels (a
		// timestamp may follow it; lobbyd writes none).
		end := strings.LastIndexByte(line, '}') + 1
		rest := strings.Fields(line[end:])
		if end == 0 {
			if len(rest) < 2 {
				continue
			}
			if v, err := strconv.ParseFloat(rest[1], 64); err == nil {
				out[rest[0]] = v
			}
			continue
		}
		if len(rest) < 1 {
			continue
		}
		if v, err := strconv.ParseFloat(rest[0], 64); err == nil {
			out[line[:end]] = v
		}
	}
	return out, sc.Err()
}

// queueDepth reads the queue's depth from GET /v1/queues of the first
// lobbyd of -url that answers.
func (l *load) queueDepth(ctx context.Context) (float64, error) {
	var err error
	for u := range l.cfg.URLs {
		var d float64
		if d, err = l.queueDepthAt(ctx, u); err == nil {
			return d, nil
		}
	}
	return 0, err
}

// queueDepthAt reads the queue's depth from GET /v1/queues of the lobbyd
// at URL u.
func (l *load) queueDepthAt(ctx context.Context, u int) (float64, error) {
	r, err := l.get(ctx, u, "/v1/queues")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var body struct {
		Queues []struct {
			Name  string   `json:"name"`
			Depth *float64 `json:"depth"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		return 0, err
	}
	for _, q := range body.Queues {
		if q.Name == l.cfg.Queue && q.Depth != nil {
			return *q.Depth, nil
		}
	}
	return 0, fmt.Errorf("GET /v1/queues: no depth for %q", l.cfg.Queue)
}

// hostBusySeconds is the CPU time all processes of this host have spent
// (not idle, not waiting for I/O), in seconds: Linux only.
func hostBusySeconds() (float64, bool) {
	if runtime.GOOS != "linux" {
		return 0, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range f[1:] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// guest time is counted in user already.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return busy / clockTicks, true
}

// clockTicks is Linux's USER_HZ, the unit of /proc/stat: 100 on every
// architecture Go runs on.
const clockTicks = 100
