package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
)

// LevelRequest is a headquarters' manual level: Level is a number or a
// configured name, Until a date YYYY-MM-DD or empty (decide.manual_days), By
// empty for the operator running the command.
type LevelRequest struct {
	Region, Level, Until, By, Reason string
}

// SetLevel sets a region's level by hand and prints the decision as JSON.
func SetLevel(ctx context.Context, e Env, r LevelRequest) error {
	return withNATS(ctx, e, "level", func(a *App) error {
		lvl, err := parseLevel(r.Level, a.Cfg.Decide.Levels.Names)
		if err != nil {
			return usage(err)
		}
		req := decide.ManualRequest{Region: strings.ToUpper(r.Region), Level: lvl, By: r.By, Reason: r.Reason}
		if req.By == "" {
			req.By = operator()
		}
		if r.Until != "" {
			if req.Until, err = schemas.ParseDate(r.Until); err != nil {
				return usage(fmt.Errorf("--until: %w", err))
			}
		}
		d, err := a.newDecider()
		if err != nil {
			return err
		}
		dec, err := d.SetManual(ctx, req)
		if err != nil {
			return levelError(err)
		}
		return printJSON(e.Stdout, dec)
	})
}

// ReleaseLevel ends a region's manual level now and prints the decision.
func ReleaseLevel(ctx context.Context, e Env, region, by, reason string) error {
	return withNATS(ctx, e, "level", func(a *App) error {
		if by == "" {
			by = operator()
		}
		d, err := a.newDecider()
		if err != nil {
			return err
		}
		dec, err := d.ReleaseManual(ctx, strings.ToUpper(region), by, reason)
		if err != nil {
			return levelError(err)
		}
		return printJSON(e.Stdout, dec)
	})
}

// ShowLevels prints regions' current levels and manual levels (every
// region when none is named).
func ShowLevels(ctx context.Context, e Env, regions []string) error {
	return withNATS(ctx, e, "level", func(a *App) error {
		d, err := a.newDecider()
		if err != nil {
			return err
		}
		if len(regions) == 0 {
			regions = a.Regions.Codes()
		}
		names := a.Cfg.Decide.Levels
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "region\tlevel\tsince\tlast decision\tmanual")
		for _, r := range regions {
			rec, err := d.Level(ctx, strings.ToUpper(r))
			if err != nil {
				return err
			}
			if rec.Level == 0 {
				fmt.Fprintf(tw, "%s\t-\t\t\t\n", strings.ToUpper(r))
				continue
			}
			manual := ""
			if m := rec.Manual; m != nil {
				manual = fmt.Sprintf("%s by %s (%s)", names.Name(m.Level), m.By, m.Reason)
				if m.Until != 0 {
					manual += ", until " + m.Until.String()
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(r), names.Name(rec.Level), rec.Since.Format("2006-01-02"), rec.LastDecisionID, manual)
		}
		return tw.Flush()
	})
}

// operator names who runs the command, for the record: user@host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "operator:" + name + "@" + host
}

// parseLevel reads a level as its number or its configured name.
func parseLevel(s string, names []string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	for i, n := range names {
		if strings.EqualFold(n, s) {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("level %q: give a number 1..%d or a name (%s)", s, len(names), strings.Join(names, ", "))
}

// levelError turns a refused request into a usage error (exit 2).
func levelError(err error) error {
	if errors.Is(err, decide.ErrBadRequest) {
		return usage(err)
	}
	return err
}
