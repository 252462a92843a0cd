package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profiled runs one phase, under the CPU profiler if Config.CPUProfile is
// set, between two allocation profiles if Config.MemProfile is.
func (b *bench) profiled(phase string, f func() error) error {
	if b.cfg.MemProfile != "" {
		if err := writeAllocs(b.cfg.MemProfile + "-" + phase + ".start.pprof"); err != nil {
			return err
		}
		defer func() {
			name := b.cfg.MemProfile + "-" + phase + ".pprof"
			if err := writeAllocs(name); err != nil {
				b.progress("  %v", err)
				return
			}
			b.progress("  allocation profile of the %s phase: %s (with -base %s)", phase, name, b.cfg.MemProfile+"-"+phase+".start.pprof")
		}()
	}
	if b.cfg.CPUProfile == "" {
		return f()
	}
	name := b.cfg.CPUProfile + "-" + phase + ".pprof"
	out, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	err = f()
	pprof.StopCPUProfile()
	b.progress("  CPU profile of the %s phase: %s", phase, name)
	return err
}

// writeAllocs writes the allocations since the start of the process; the
// profile only counts what the last completed GC cycle has seen, hence the GC.
func writeAllocs(name string) error {
	runtime.GC()
	out, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
		out.Close()
		return fmt.Errorf("--memprofile %s: %w", name, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}
