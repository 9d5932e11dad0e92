// Package cputime reads the CPU time the process has used, for benchmarks that print the CPU
// spent per unit of work beside their rates: on a machine shared with other work the rates
// swing from run to run, the CPU per unit much less.
package cputime
