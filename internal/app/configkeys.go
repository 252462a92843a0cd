package app

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// unknownKeys reports every key of the configuration file that epiwatch
// does not read — a typo would otherwise be silently ignored — with the
// nearest known key as a suggestion.
func unknownKeys(v *viper.Viper, file string) error {
	leaves, open := configKeySet(reflect.TypeOf(Config{}), "")
	var problems []string
	for _, k := range v.AllKeys() {
		if leaves[k] || underAny(k, open) || underAny(k, leafPrefixes(leaves)) {
			continue
		}
		msg := fmt.Sprintf("unknown key %s%s", k, inFileShort(file))
		if near := nearestKey(k, leaves); near != "" {
			msg += "; did you mean " + near + "?"
		}
		problems = append(problems, msg)
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%s (every key is listed in deploy/epiwatch.example.yaml)", strings.Join(problems, "; "))
}

func inFileShort(f string) string {
	if f == "" {
		return ""
	}
	return " in " + f
}

// configKeySet lists the dotted keys of a config struct: leaves (values,
// lists and durations) and open prefixes (maps, whose keys are the user's).
func configKeySet(t reflect.Type, prefix string) (leaves map[string]bool, open []string) {
	leaves = map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, squash, ok := fieldKey(f, prefix)
		if squash {
			l, o := configKeySet(f.Type, prefix)
			maps.Copy(leaves, l)
			open = append(open, o...)
			continue
		}
		if !ok {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Map:
			open = append(open, key)
		case isSection(f.Type):
			l, o := configKeySet(f.Type, key)
			maps.Copy(leaves, l)
			open = append(open, o...)
		default:
			leaves[key] = true
		}
	}
	return leaves, open
}

// leafPrefixes are the leaves under which viper may still report keys
// (a list of tables given as a map, say); they are checked on unmarshal.
func leafPrefixes(leaves map[string]bool) []string {
	out := make([]string, 0, len(leaves))
	for k := range leaves {
		out = append(out, k)
	}
	return out
}

func underAny(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if key == p || strings.HasPrefix(key, p+".") {
			return true
		}
	}
	return false
}

// nearestKey is the known key closest to k by edit distance, preferring
// keys of the same section, or "" when none is close.
func nearestKey(k string, known map[string]bool) string {
	best, bestD, bestOK := "", 1<<30, false
	section := k[:strings.LastIndex(k, ".")+1]
	leaf := k[len(section):]
	for cand := range known {
		d := editDistance(k, cand)
		// A typo in the last part is the usual one; one in a section name
		// is allowed a little more.
		ok := d <= max(2, len(leaf)/2)
		if !strings.HasPrefix(cand, section) {
			d++
			ok = d <= max(3, len(k)/5)
		}
		if d < bestD || d == bestD && cand < best {
			best, bestD, bestOK = cand, d, ok
		}
	}
	if !bestOK {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeError words mapstructure's error ("decoding failed due to the
// following error(s):\n\n'x' expected type …") as one line per problem.
func decodeError(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "error(s):"); ok {
		msg = rest
	}
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, strings.TrimPrefix(l, "* "))
		}
	}
	return strings.Join(parts, "; ")
}

func inFile(f string) string {
	if f == "" {
		return ""
	}
	return " (" + f + ")"
}

// fieldKey is the dotted configuration key of a struct field under prefix,
// from its mapstructure tag: squash means the field's own fields sit at
// prefix; ok is false for an untagged or "-" field.
func fieldKey(f reflect.StructField, prefix string) (key string, squash, ok bool) {
	tag := strings.Split(f.Tag.Get("mapstructure"), ",")
	if len(tag) > 1 && tag[1] == "squash" {
		return "", true, false
	}
	key = tag[0]
	if key == "" || key == "-" {
		return "", false, false
	}
	if prefix != "" {
		key = prefix + "." + key
	}
	return key, false, true
}

// isSection reports whether a field of this type is a section of further
// keys rather than one value (durations and times are values).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Duration(0)) && t != reflect.TypeOf(time.Time{})
}
