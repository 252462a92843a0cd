package main

import "github.com/epiwatch/epiwatch/internal/tools/cli"

// toolExit gives the offline tools' bad-input errors (cli.BadInputError:
// a wrong flag, an unreadable or invalid file) exit status 2, as usage
// errors have; any other error stays status 1.
func toolExit(err error) error {
	if cli.IsBadInput(err) {
		return &exitError{2, err}
	}
	return err
}
