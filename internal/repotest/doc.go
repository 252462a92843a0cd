// Package repotest holds tests of the repository as a whole: rules no single
// package can check for itself, such as that a clone stands alone and that
// imports follow the layer table in STYLE.md. It has no code of its own.
package repotest
