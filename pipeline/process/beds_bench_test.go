package process

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// The bed feeds of the process benchmarks (BenchmarkStateGrowth,
// BenchmarkFullRecompute20x730*, BenchmarkEngine) are made here, so that
// they report the same facilities the same way.

// benchFacilities is how many facilities report beds per region in the
// benchmarks' bed feeds.
const benchFacilities = 100

// benchFacilityID is the id of facility f of region in the bed feeds.
func benchFacilityID(region string, f int) string { return fmt.Sprintf("%s-h%d", region, f) }

// bedSnapshotEvent is one bed snapshot event of the bed feeds.
func bedSnapshotEvent(id, region, facility, kind string, at time.Time, total, occupied int) schemas.Event {
	return schemas.Event{EventID: id, Type: schemas.TypeBedSnapshot, Region: region, Source: "beds",
		FacilityID: facility, BedKind: kind, SnapshotTime: &at, Total: &total, Occupied: &occupied}
}

// dailyBeds calls add with a region's bed feed over days days from first,
// as a realistic daily register of free beds (the plan's source 000 asks for
// one a day): each of benchFacilities facilities reports its infectious beds
// once a day (100 beds; occupancy follows a slow wave plus noise), at a
// minute between 09:00 and 10:39 of its clock (+05). About 2 % of the
// reports are missed, so a facility silent two days running is stale on
// some days, and about 1 % are corrected down the next day (the same
// snapshot time re-sent with fewer occupied beds), so most days have a
// correction to name in the negative-correction flag. arrival is the day
// the event reaches the stream: the snapshot's own day, the day after for a
// correction. Events are passed in the order of their days, each correction
// right after the report it corrects.
func dailyBeds(rng *rand.Rand, region string, first schemas.Date, days int, add func(arrival schemas.Date, e schemas.Event)) {
	n := 0
	id := func() string { n++; return fmt.Sprintf("%s-snapshot-%d", region, n) }
	facilities := make([]string, benchFacilities)
	for f := range facilities {
		facilities[f] = benchFacilityID(region, f)
	}
	for i := range days {
		d := first + schemas.Date(i)
		day := d.Time()
		for f, facility := range facilities {
			if rng.Intn(50) == 0 {
				continue // missed
			}
			at := time.Date(day.Year(), day.Month(), day.Day(), 9, rng.Intn(100), 0, 0, almaty)
			occ := 40 + int(30*math.Sin(float64(i)/30+float64(f))) + rng.Intn(10)
			add(d, bedSnapshotEvent(id(), region, facility, schemas.BedInfectious, at, 100, occ))
			if rng.Intn(100) == 0 {
				add(d+1, bedSnapshotEvent(id(), region, facility, schemas.BedInfectious, at, 100, occ-1-rng.Intn(10)))
			}
		}
	}
}

// reportCPU reports the process's CPU time per iteration since start (a
// processCPU reading) as cpu-ns/op, the figure that a busy machine does not
// inflate. With several cores it is their sum, not the elapsed time.
func reportCPU(b *testing.B, start time.Duration) {
	if start <= 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
