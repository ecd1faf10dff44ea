// Package render holds the sinks a person or a program reads: the live
// text stream, JSON Lines, and the end-of-run summary.
package render
