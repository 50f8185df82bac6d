package chaos

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	long        = flag.Bool("chaos.long", false, "run the long profile (TestChaosLong): every fault kind 20 times, at least 10 minutes")
	seedFlag    = flag.Uint64("chaos.seed", 0, "the seed of the nemesis and the workloads (0: from the clock, printed)")
	serversFlag = flag.Int("chaos.servers", 3, "servers in the long profile's cluster (3 or 5)")
	outFlag     = flag.String("chaos.out", "", "directory for porcupine's visualizations (default: a temporary directory, kept)")
	strictFlag  = flag.Bool("chaos.strict", false, "also exercise, and fail on, the open anomalies (those whose TestRegression_ test is guarded)")
	roundsFlag  = flag.Int("chaos.rounds", 0, "fault rounds of the long profile (default 20: every kind 20 times)")
	kindsFlag   = flag.String("chaos.kinds", "", "comma-separated fault kinds to inject (default: all)")
	regressions = flag.Bool("chaos.regressions", false, "make the racy TestRegression_ reproductions try many more times")
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func seed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -chaos.seed %d)", s, s)
	return s
}

// outDir is where porcupine's visualizations go; it is created only when
// there is one to write.
func outDir(t *testing.T, seed uint64) string {
	if *outFlag != "" {
		return *outFlag
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("coord-chaos-%s-%d", strings.ToLower(t.Name()), seed))
}

// configure applies the flags common to both profiles.
func configure(t *testing.T, p *Profile) {
	p.OutDir = outDir(t, p.Seed)
	p.Kinds = kinds(t)
	if *strictFlag {
		p.WatchMixed, p.StrictDisk, p.StrictHang, p.StrictLock = true, true, true, true
	}
	t.Logf("porcupine visualizations of illegal histories go to %s", p.OutDir)
}

func kinds(t *testing.T) []FaultKind {
	if *kindsFlag == "" {
		return nil
	}
	var out []FaultKind
	for _, k := range strings.Split(*kindsFlag, ",") {
		out = append(out, FaultKind(strings.TrimSpace(k)))
	}
	return out
}

// report logs the figures and fails t unless every one passed.
func report(t *testing.T, r *Report) {
	t.Helper()
	for _, f := range r.Faults {
		for _, k := range f.Known {
			t.Logf("known open anomaly during %s: %s", f.Kind, k)
		}
	}
	for _, l := range r.Lines() {
		t.Log(l)
	}
	if !r.OK() {
		t.Errorf("chaos run %s (seed %d) did not pass:\n%s", r.Profile.Name, r.Profile.Seed, r.Summary())
	}
}

// TestChaosShort is the CI profile: every fault kind once against three
// servers, every checker, a couple of minutes.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coordd processes")
	}
	p := ShortProfile(seed(t))
	configure(t, &p)
	report(t, Run(t, p))
}

// TestChaosLong is `make chaos`.
func TestChaosLong(t *testing.T) {
	if !*long {
		t.Skip("the long profile runs with -chaos.long (make chaos)")
	}
	p := LongProfile(seed(t), *serversFlag)
	configure(t, &p)
	if *roundsFlag > 0 {
		p.Rounds = *roundsFlag
		p.MinOps = min(p.MinOps, 5000*p.Rounds)
	}
	r := Run(t, p)
	report(t, r)
	// The figures also go to stdout, one per line, for scripts.
	for _, l := range r.Lines() {
		os.Stdout.WriteString(l + "\n")
	}
}
