// Package app assembles epiwatch's processes: the typed configuration (file <
// environment < flags, read with viper here and nowhere below), the
// components built from it, and one Run function per service, so that the
// CLI only parses flags and every piece of wiring can be tested without
// cobra.
package app
