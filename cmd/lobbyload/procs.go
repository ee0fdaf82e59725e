package main

// -procs N plays the run in N worker processes of lobbyload itself, for
// runs larger than one process's open-files limit (every player holds a
// socket). The parent starts each worker as `lobbyload -worker i/N` (the
// executable it runs from) and talks to it over pipes, one JSON value per
// line:
//
//   - parent → worker's stdin: first the run's settings (workerSetup: the
//     parsed flags, the secret included, which so never shows in ps);
//     then "go" when every worker is ready, "alldone" once the players of
//     every worker are matched or failed, or "stop" to end early. The end
//     of stdin (the parent is gone) stops the worker too.
//   - worker's stdout → parent: "ready" once its players are set up (with
//     -preconnect: connected or failed), "stats" (its live counts, a few
//     times a second), "finished" once its players are all matched or
//     failed, and last "result", its tally: every latency sample, the
//     counts, errors, violations and what each match's first receiver was
//     told, which the parent merges into one report.
//
// Every worker plans the whole run from -seed, as one process would, and
// plays a contiguous share of it, whole lobbies only; players keep the
// names, URLs and -rate slots they would have in one process. The start is
// a barrier: the parent sends "go" to all at once when the last is ready,
// with the moment the queueing starts, so it starts at the same moment in
// every worker (with -preconnect, after every worker connected its
// players). A worker that exits before its result fails the run, with
// its stderr.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxProcs bounds -procs.
const maxProcs = 64

// workerSpec reports whether args start a worker of -procs, and its
// "i/N". The flag is not among lobbyload's: a worker takes its settings
// from the parent.
func workerSpec(args []string) (string, bool) {
	switch {
	case len(args) == 2 && (args[0] == "-worker" || args[0] == "--worker"):
		return args[1], true
	case len(args) == 1 && strings.HasPrefix(args[0], "-worker="):
		return strings.TrimPrefix(args[0], "-worker="), true
	}
	return "", false
}

// parseWorkerSpec reads "i/N".
func parseWorkerSpec(spec string) (w, n int, err error) {
	a, b, ok := strings.Cut(spec, "/")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || w < 0 || w >= n {
		return 0, 0, fmt.Errorf("-worker: want i/N with 0 ≤ i < N, got %q", spec)
	}
	return w, n, nil
}

// workerSetup is the first line the parent writes to a worker.
type workerSetup struct {
	Config  config `json:"config"`
	Worker  int    `json:"worker"`
	Workers int    `json:"workers"`
}

// toWorker is each later line the parent writes to a worker.
type toWorker struct {
	Type string `json:"type"` // go, alldone, stop
	// With go: Start is when the players start queueing (at -rate from
	// then), the same for every worker; Offset is the place in the run's
	// -rate schedule of the worker's first player.
	Start  time.Time `json:"start,omitzero"`
	Offset int       `json:"offset,omitempty"`
}

// fromWorker is each value a worker writes to its stdout.
type fromWorker struct {
	Type string `json:"type"` // ready, stats, finished, result
	// Starting is, with ready, how many players will queue (with
	// -preconnect, those connected).
	Starting int          `json:"starting,omitempty"`
	Stats    *workerStats `json:"stats,omitempty"`
	Result   *tally       `json:"result,omitempty"`
}

// workerStats are a worker's live counts and its CPU time so far.
type workerStats struct {
	Connected, Searching, Matched, Failed, Open int64
	// Away and Back are the worker's load.away and load.back.
	Away, Back int64
	CPUSec     float64
}

// workerLink is a worker's side of the pipes.
type workerLink struct {
	mu  sync.Mutex
	enc *json.Encoder

	start   chan toWorker // the go message
	allDone chan struct{} // closed on alldone (or when the parent is gone)
}

func (k *workerLink) send(m fromWorker) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.enc.Encode(m)
}

// read takes the parent's messages until stdin ends; stop or the end of
// stdin cancels the worker's run.
func (k *workerLink) read(dec *json.Decoder, cancel context.CancelFunc) {
	var once sync.Once
	done := func() { once.Do(func() { close(k.allDone) }) }
	defer done()
	defer cancel()
	for {
		var m toWorker
		if err := dec.Decode(&m); err != nil {
			return
		}
		switch m.Type {
		case "go":
			k.start <- m
		case "alldone":
			done()
		case "stop":
			cancel()
		}
	}
}

// sendStats sends the worker's counts now.
func (k *workerLink) sendStats(l *load) {
	cpu, _ := processCPUSeconds()
	k.send(fromWorker{Type: "stats", Stats: &workerStats{Connected: l.connected.Load(), Searching: l.searching.Load(),
		Matched: l.matched.Load(), Failed: l.failed.Load(), Open: l.open.Load(), Away: l.away.Load(), Back: l.back.Load(), CPUSec: cpu}})
}

// stats sends the worker's counts every interval until stop is called,
// and once more then.
func (k *workerLink) stats(l *load, every time.Duration) (stop func()) {
	send := func() { k.sendStats(l) }
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				send()
			}
		}
	}()
	return func() { close(done); <-exited; send() }
}

// runWorker is a worker process of -procs: it reads the run's settings
// from stdin, plays its share of the players and writes its tally to
// stdout.
func runWorker(ctx context.Context, spec string, stdin io.Reader, stdout, stderr io.Writer) error {
	w, n, err := parseWorkerSpec(spec)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(stdin))
	var setup workerSetup
	if err := dec.Decode(&setup); err != nil {
		return fmt.Errorf("read the settings from the parent: %w", err)
	}
	if setup.Worker != w || setup.Workers != n {
		return fmt.Errorf("started as %s, set up as %d/%d", spec, setup.Worker, setup.Workers)
	}
	cfg := setup.Config
	cfg.Progress = "off" // the parent shows progress
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	link := &workerLink{enc: json.NewEncoder(stdout), start: make(chan toWorker, 1), allDone: make(chan struct{})}
	go link.read(dec, cancel)
	l := newLoad(cfg, stderr)
	l.link = link
	l.holdEnd = link.allDone
	return l.runWorker(ctx, w, n)
}

func (l *load) runWorker(ctx context.Context, w, n int) error {
	defer l.http.CloseIdleConnections()
	if err := l.checkQueue(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()
	players := share(l.plan(), w, n)
	l.total = len(players)
	l.start = time.Now()
	l.queueStart = l.start
	if l.total == 0 {
		l.allDoneOnce.Do(func() { close(l.allDone) })
	}
	stopStats := l.link.stats(l, min(l.cfg.SampleInterval, 250*time.Millisecond))
	starting := players
	if l.cfg.Preconnect {
		starting = l.preconnect(runCtx, players)
	}
	l.link.sendStats(l) // so that the parent's count at the barrier is this one
	if err := l.link.send(fromWorker{Type: "ready", Starting: len(starting)}); err != nil {
		return err
	}
	offset := 0
	select {
	case m := <-l.link.start:
		l.queueStart, offset = m.Start, m.Offset
	case <-runCtx.Done():
		l.queueStart = time.Now()
	}
	// finished tells the parent, once, that this worker's players are all
	// matched or failed, or that its run ended (-duration, -settle).
	var once sync.Once
	finished := func() { once.Do(func() { l.link.send(fromWorker{Type: "finished"}) }) }
	go func() {
		select {
		case <-l.allDone:
			finished()
		case <-runCtx.Done():
			finished()
		}
	}()
	l.play(runCtx, cancel, starting, offset)
	finished()
	stopStats()
	t := l.collect(players)
	t.CPUSec, _ = processCPUSeconds()
	return l.link.send(fromWorker{Type: "result", Result: t})
}

// workerCommand is the command of worker spec ("i/N"): this executable
// with -worker. Tests replace it.
var workerCommand = func(spec string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "-worker", spec)
}

// workerProc is the parent's handle on one worker process.
type workerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	// stats is the latest workerStats the worker sent.
	stats atomic.Pointer[workerStats]

	mu     sync.Mutex
	closed bool
}

// send writes one message to the worker's stdin; errors (the worker is
// gone) show when it exits.
func (w *workerProc) send(m toWorker) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	b, _ := json.Marshal(m)
	w.stdin.Write(append(b, '\n'))
}

// closeStdin ends the worker's stdin: it stops if it has not finished.
func (w *workerProc) closeStdin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		w.stdin.Close()
	}
}

// workerEvent is what the parent hears from a worker: a message, or its
// exit (exited, with Wait's error).
type workerEvent struct {
	w      int
	msg    fromWorker
	exited bool
	err    error
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	lost bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.lost = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if b.lost {
		s = "…" + s
	}
	return s
}

// workersCPU is the CPU time the workers reported so far (0 without).
func (l *load) workersCPU() float64 {
	sum := 0.0
	for _, w := range l.workers {
		if s := w.stats.Load(); s != nil {
			sum += s.CPUSec
		}
	}
	return sum
}

// sumWorkerStats sets the parent's live counts (those of the progress
// line and the sampler) to the sums of the workers' latest.
func (l *load) sumWorkerStats() {
	var sum workerStats
	for _, w := range l.workers {
		if s := w.stats.Load(); s != nil {
			sum.Connected += s.Connected
			sum.Searching += s.Searching
			sum.Matched += s.Matched
			sum.Failed += s.Failed
			sum.Open += s.Open
			sum.Away += s.Away
			sum.Back += s.Back
		}
	}
	l.connected.Store(sum.Connected)
	l.searching.Store(sum.Searching)
	l.matched.Store(sum.Matched)
	l.failed.Store(sum.Failed)
	l.open.Store(sum.Open)
	l.away.Store(sum.Away)
	l.back.Store(sum.Back)
}

// startWorkers starts the -procs workers, gives each the run's settings,
// and returns the channel of what they say and do. On an error no worker
// is left running.
func (l *load) startWorkers() (chan workerEvent, error) {
	n := l.cfg.Procs
	events := make(chan workerEvent, 4*n)
	var ws []*workerProc
	var stdouts []io.ReadCloser
	fail := func(err error) (chan workerEvent, error) {
		for _, w := range ws {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
		return nil, err
	}
	for i := range n {
		spec := fmt.Sprintf("%d/%d", i, n)
		cmd := workerCommand(spec)
		w := &workerProc{cmd: cmd, stderr: &tailBuffer{max: 64 << 10}}
		cmd.Stderr = w.stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return fail(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return fail(err)
		}
		if err := cmd.Start(); err != nil {
			return fail(fmt.Errorf("start worker %s: %w", spec, err))
		}
		w.stdin = stdin
		ws = append(ws, w)
		stdouts = append(stdouts, stdout)
	}
	setup := func(i int) []byte {
		b, _ := json.Marshal(workerSetup{Config: l.cfg, Worker: i, Workers: n})
		return append(b, '\n')
	}
	// The readers sum the workers' counts over l.workers: set it first.
	l.workers = ws
	for i, w := range ws {
		w.stdin.Write(setup(i)) // a worker that cannot read it exits, which shows
		go func(stdout io.ReadCloser) {
			dec := json.NewDecoder(bufio.NewReaderSize(stdout, 1<<16))
			for {
				var m fromWorker
				if err := dec.Decode(&m); err != nil {
					if !errors.Is(err, io.EOF) {
						fmt.Fprintf(w.stderr, "\n(lobbyload: unreadable output from the worker: %v)\n", err)
					}
					io.Copy(io.Discard, stdout)
					break
				}
				if m.Type == "stats" && m.Stats != nil {
					w.stats.Store(m.Stats)
					l.sumWorkerStats()
					continue
				}
				events <- workerEvent{w: i, msg: m}
			}
			events <- workerEvent{w: i, exited: true, err: w.cmd.Wait()}
		}(stdouts[i])
	}
	return events, nil
}

// stopWorkers ends the workers still running: they are told to stop (their
// stdin ends) and, those still there after a while, killed (by their pid).
func (l *load) stopWorkers(events chan workerEvent, running map[int]bool) {
	for i := range running {
		l.workers[i].send(toWorker{Type: "stop"})
		l.workers[i].closeStdin()
	}
	deadline := time.After(10 * time.Second)
	for len(running) > 0 {
		select {
		case e := <-events:
			if e.exited {
				delete(running, e.w)
			}
		case <-deadline:
			for i := range running {
				l.workers[i].cmd.Process.Kill()
			}
			deadline = time.After(10 * time.Second)
		}
	}
}

// runProcs is the parent of a -procs run: it starts the workers, holds the
// barrier, samples lobbyd, and merges the workers' tallies into the run's
// report. A worker that exits before sending its result fails the run.
func (l *load) runProcs(ctx context.Context) (rep *report, err error) {
	done, err := l.prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	n := l.cfg.Procs
	runCtx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()
	// Past this the workers are overdue: their own -duration, the flush of
	// the matched players and the goodbyes bound their run.
	overdue := time.After(l.cfg.Duration + l.cfg.FlushWait + closeWait + 30*time.Second)

	l.start = time.Now()
	l.queueStart = l.start
	events, err := l.startWorkers()
	if err != nil {
		return nil, err
	}
	running := map[int]bool{}
	for i := range l.workers {
		running[i] = true
	}
	defer func() { l.stopWorkers(events, running) }()
	stopSampler := l.startSampler(ctx)
	stopProgress := l.startProgress()
	defer func() {
		if err != nil {
			stopProgress()
			stopSampler()
		}
	}()

	starting := make([]int, n)
	results := make([]*tally, n)
	ready, finished := 0, 0
	stopped := false
	crashed := func(e workerEvent) error {
		w := l.workers[e.w]
		why := "exited before sending its result"
		if e.err != nil {
			why = e.err.Error()
		}
		return fmt.Errorf("worker %d/%d (pid %d) failed: %s; its stderr:\n%s", e.w, n, w.cmd.Process.Pid, why, w.stderr.String())
	}
	// wait handles events until cond holds; ctx's end (a signal) asks the
	// workers to stop, which they do by sending their results.
	wait := func(phase context.Context, cond func() bool) error {
		for !cond() {
			var stop <-chan struct{}
			if !stopped {
				stop = ctx.Done()
			}
			select {
			case e := <-events:
				switch {
				case e.exited:
					delete(running, e.w)
					if results[e.w] == nil || e.err != nil {
						return crashed(e)
					}
				case e.msg.Type == "ready":
					ready++
					starting[e.w] = e.msg.Starting
				case e.msg.Type == "finished":
					finished++
				case e.msg.Type == "result":
					if e.msg.Result == nil {
						return crashed(e)
					}
					results[e.w] = e.msg.Result
				}
			case <-stop:
				stopped = true
				for _, w := range l.workers {
					w.send(toWorker{Type: "stop"})
				}
			case <-phase.Done():
				return nil
			case <-overdue:
				var late []string
				for i := range running {
					late = append(late, strconv.Itoa(i))
				}
				return fmt.Errorf("workers %s did not finish in time", strings.Join(late, ", "))
			}
		}
		return nil
	}

	// The barrier: every worker set up (with -preconnect, connected).
	if err := wait(context.Background(), func() bool { return ready == n }); err != nil {
		return nil, err
	}
	l.queueStart = time.Now()
	offset := 0
	for i, w := range l.workers {
		w.send(toWorker{Type: "go", Start: l.queueStart, Offset: offset})
		offset += starting[i]
	}
	if l.cfg.Preconnect && l.progressOn() {
		fmt.Fprintf(l.stderr, "%6.0fs connected %d of %d: queueing\n", l.queueStart.Sub(l.start).Seconds(), l.connected.Load(), l.cfg.Players)
	}
	cpuFrom := l.sampleCPU(ctx)
	// Until every worker's players are matched or failed (or the run's
	// time is up): then the CPU window closes, and the matched players may
	// say goodbye.
	if err := wait(runCtx, func() bool { return finished == n }); err != nil {
		return nil, err
	}
	cpuTo := l.sampleCPU(ctx)
	for _, w := range l.workers {
		w.send(toWorker{Type: "alldone"})
	}
	if err := wait(context.Background(), func() bool { return len(running) == 0 }); err != nil {
		return nil, err
	}
	end := time.Now()
	stopProgress()
	for _, w := range l.workers {
		w.closeStdin()
	}

	check := newChecker()
	t := mergeTallies(results, check)
	r := l.buildReport(t, end)
	r.CPU = cpuBetween(cpuFrom, cpuTo, r.Matched)
	r.Procs = n
	for i, wt := range results {
		r.Workers = append(r.Workers, workerReport{Worker: i, Players: wt.Players, Connected: wt.Connected, Matched: wt.Matched,
			Failed: wt.Failed, Lost: wt.Lost, CPUSec: math.Round(wt.CPUSec*1000) / 1000})
	}
	r.Series = stopSampler()
	return r, nil
}
