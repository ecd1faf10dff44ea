//go:build linux

package main

import (
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/session"
)

// validateFilters checks the filters against what the kernel side holds.
func validateFilters(f *session.Filters) error { return loader.ValidateFilters(f) }
