package tracer

import "errors"

var errNotImplemented = errors.New("not implemented")
