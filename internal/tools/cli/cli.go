// Package cli holds the command-line conventions the offline tools
// (epiwatch rt, signals, nowcast, simulate, rules, token) share, so that
// they can run and be tested without cobra: an error that is the user's
// input's fault (the CLI exits with status 2 for it), an input named FILE
// or - for standard input, and which flags were given.
package cli

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// BadInputError is an error caused by what the user gave — a flag, a file,
// its contents — rather than by the machine: the CLI exits with status 2
// for it, as for a usage error, and the message says what to fix.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }
func (e *BadInputError) Unwrap() error { return e.Err }

// BadInput marks err as the input's fault; nil stays nil.
func BadInput(err error) error {
	if err == nil {
		return nil
	}
	return &BadInputError{err}
}

// BadInputf is BadInput(fmt.Errorf(format, args...)).
func BadInputf(format string, args ...any) error {
	return &BadInputError{fmt.Errorf(format, args...)}
}

// IsBadInput reports whether err, or an error it wraps, is a BadInputError.
func IsBadInput(err error) bool {
	var bi *BadInputError
	return errors.As(err, &bi)
}

// Changed reports whether the flag of this name (without dashes) was given
// on the command line: a flag that does not apply to the chosen method is
// an error rather than silently ignored. Nil means none was.
type Changed func(flag string) bool

// First returns the first of names that was given, or "".
func (c Changed) First(names ...string) string {
	if c == nil {
		return ""
	}
	for _, n := range names {
		if c(n) {
			return n
		}
	}
	return ""
}

// Stdin is the name of standard input as a command line gives it; an
// input not named at all is standard input too.
const Stdin = "-"

// DisplayName is how errors name the input: the file's name, or <stdin>.
func DisplayName(name string) string {
	if name == Stdin || name == "" {
		return "<stdin>"
	}
	return name
}

// ReadInput reads the input called name — standard input when it is "-"
// or "" — with read, which is given the reader and the input's DisplayName.
func ReadInput[T any](name string, stdin io.Reader, read func(io.Reader, string) (T, error)) (T, error) {
	if name == Stdin || name == "" {
		return read(stdin, DisplayName(name))
	}
	return ReadFile(name, read)
}

// ReadFile opens the file and reads it with read.
func ReadFile[T any](name string, read func(io.Reader, string) (T, error)) (T, error) {
	f, err := os.Open(name)
	if err != nil {
		var zero T
		return zero, err // *PathError names the file
	}
	defer f.Close()
	return read(f, name)
}

// OneLine folds a multi-line message (an HTTP body, a wrapped error) onto
// one line for a progress or error line.
func OneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// CSVReader reads the CSV files people make by hand or export from a
// spreadsheet: a leading byte-order mark is skipped, lines starting with #
// are comments, and spaces after a comma are trimmed.
func CSVReader(r io.Reader) *csv.Reader {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	return cr
}
