package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the outcome of one run, printed as a table plus one RESULT line
// (-o text) or as one JSON object (-o json).
type Result struct {
	Workload string   `json:"workload"`
	Servers  []string `json:"servers"`
	Sessions int      `json:"sessions"`
	Pipeline int      `json:"pipeline,omitempty"`
	// WindowS is the measured window in seconds (warmup excluded).
	WindowS float64 `json:"window_s"`
	// Unit says what Ops counts: "ops", "create+delete pairs",
	// "fan-out rounds" or "heartbeats".
	Unit    string  `json:"unit"`
	Ops     uint64  `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
	// Latency is of one unit (an op, a pair, a round's fan-out).
	Latency *Latency  `json:"latency_ms,omitempty"`
	ByOp    []OpStats `json:"by_op,omitempty"`

	// Errors counts every failed answer and lost request of the whole run
	// (warmup and drain included), by code.
	Errors       uint64            `json:"errors"`
	ErrorsByCode map[string]uint64 `json:"errors_by_code"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`

	// CPU use over the window as a percentage of one core.
	ServerPIDs     []int    `json:"server_pids,omitempty"`
	ServerCPUPct   *float64 `json:"server_cpu_pct,omitempty"`
	BaselineCPUPct *float64 `json:"baseline_cpu_pct,omitempty"`
	ClientCPUPct   float64  `json:"client_cpu_pct"`

	// watch-fanout
	Watchers   int      `json:"watchers,omitempty"`
	WatchConns int      `json:"watch_conns,omitempty"`
	AckLatency *Latency `json:"ack_latency_ms,omitempty"`

	Notes []string `json:"notes,omitempty"`
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// OpStats is one op's share of a run.
type OpStats struct {
	Op      string  `json:"op"`
	Ops     uint64  `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
	Latency Latency `json:"latency_ms"`
}

func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func latencyOf(h *histogram) *Latency {
	return &Latency{P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(time.Duration(h.max)), Mean: ms(h.mean())}
}

func opStats(op string, h *histogram, window float64) OpStats {
	return OpStats{Op: op, Ops: h.n, OpsPerS: math.Round(float64(h.n) / window), Latency: *latencyOf(h)}
}

func newResult(cfg *Config) *Result {
	return &Result{Workload: cfg.Workload, Servers: cfg.Servers, Sessions: cfg.Sessions, Unit: "ops",
		ErrorsByCode: map[string]uint64{}}
}

// setMain sets Ops, OpsPerS and Latency from the histogram of the unit.
func (r *Result) setMain(h *histogram) {
	r.Ops = h.n
	if r.WindowS > 0 {
		r.OpsPerS = math.Round(float64(h.n) / r.WindowS)
	}
	r.Latency = latencyOf(h)
}

// errTally counts errors by code and keeps one sample message of each.
type errTally map[string]*errCount

type errCount struct {
	n      uint64
	sample string
}

func (t errTally) add(code string, n uint64, sample string) {
	e := t[code]
	if e == nil {
		e = &errCount{}
		t[code] = e
	}
	e.n += n
	if e.sample == "" {
		e.sample = sample
	}
}

func (r *Result) addError(code string, n uint64, sample string) {
	r.Errors += n
	r.ErrorsByCode[code] += n
	if sample != "" {
		if r.ErrorSamples == nil {
			r.ErrorSamples = map[string]string{}
		}
		if _, ok := r.ErrorSamples[code]; !ok {
			r.ErrorSamples[code] = sample
		}
	}
}

func (r *Result) addErrors(t errTally) {
	for code, e := range t {
		r.addError(code, e.n, e.sample)
	}
}

// resultLine is the one-line machine-readable summary.
func (r *Result) resultLine() string {
	var b strings.Builder
	kv := func(k string, v any) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		switch v := v.(type) {
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
		default:
			fmt.Fprint(&b, v)
		}
	}
	b.WriteString("RESULT")
	kv("workload", r.Workload)
	kv("sessions", r.Sessions)
	if r.Pipeline > 0 {
		kv("pipeline", r.Pipeline)
	}
	if r.Watchers > 0 {
		kv("watchers", r.Watchers)
		kv("watch_conns", r.WatchConns)
	}
	kv("ops", r.Ops)
	kv("ops_per_s", r.OpsPerS)
	if l := r.Latency; l != nil {
		kv("p50_ms", l.P50)
		kv("p99_ms", l.P99)
		kv("p999_ms", l.P999)
		kv("max_ms", l.Max)
	}
	if l := r.AckLatency; l != nil {
		kv("ack_p50_ms", l.P50)
		kv("ack_p99_ms", l.P99)
	}
	kv("errors", r.Errors)
	for _, code := range slices.Sorted(maps.Keys(r.ErrorsByCode)) {
		kv("err_"+code, r.ErrorsByCode[code])
	}
	if r.ServerCPUPct != nil {
		kv("server_cpu_pct", round1(*r.ServerCPUPct))
	}
	if r.BaselineCPUPct != nil {
		kv("baseline_cpu_pct", round1(*r.BaselineCPUPct))
	}
	kv("client_cpu_pct", round1(r.ClientCPUPct))
	return b.String()
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// writeText prints the human table followed by the RESULT line.
func (r *Result) writeText(w io.Writer) {
	fmt.Fprintf(w, "workload %s: %d sessions on %s", r.Workload, r.Sessions, strings.Join(r.Servers, ","))
	if r.Pipeline > 0 {
		fmt.Fprintf(w, ", pipeline %d", r.Pipeline)
	}
	if r.Watchers > 0 {
		fmt.Fprintf(w, ", %d watchers over %d connections", r.Watchers, r.WatchConns)
	}
	fmt.Fprintf(w, ", window %.1fs\n\n", r.WindowS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "what\tcount\tper s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tmean ms\t")
	row := func(name string, n uint64, rate float64, l *Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, n, rate, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	}
	if len(r.ByOp) > 1 || r.Unit != "ops" {
		for _, o := range r.ByOp {
			row(o.Op, o.Ops, o.OpsPerS, &o.Latency)
		}
	}
	if r.Latency != nil {
		row(r.Unit, r.Ops, r.OpsPerS, r.Latency)
	} else {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t\t\t\t\t\t\t\n", r.Unit, r.Ops, r.OpsPerS)
	}
	if r.AckLatency != nil {
		row("write ack", r.Ops, r.OpsPerS, r.AckLatency)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Errors == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		fmt.Fprintf(w, "errors: %d\n", r.Errors)
		for _, code := range slices.Sorted(maps.Keys(r.ErrorsByCode)) {
			fmt.Fprintf(w, "  %-20s %d  %s\n", code, r.ErrorsByCode[code], r.ErrorSamples[code])
		}
	}
	if r.ServerCPUPct != nil {
		fmt.Fprintf(w, "server cpu: %.1f%% of one core (pids %v)", *r.ServerCPUPct, r.ServerPIDs)
		if r.BaselineCPUPct != nil {
			fmt.Fprintf(w, "; %.1f%% before the sessions opened", *r.BaselineCPUPct)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "client cpu: %.1f%% of one core (this process)\n", r.ClientCPUPct)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintln(w, r.resultLine())
}

func (r *Result) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
