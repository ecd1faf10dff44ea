package format

import "strconv"

// Counted writes a count the kernel kept exactly, with the events that
// arrived beside it when fewer did (the ring buffer was full): "57 (41
// received)". Where both come from the events they are equal, and it is
// the count alone.
func Counted(count, received uint64) string {
	s := strconv.FormatUint(count, 10)
	if count == received {
		return s
	}
	return s + " (" + strconv.FormatUint(received, 10) + " received)"
}

// ExactNote is what a table's title says of counts written by Counted:
// whether they are the kernel's totals, or only the events received.
func ExactNote(exact bool) string {
	if exact {
		return "kernel's totals, exact, events received in brackets where fewer arrived"
	}
	return "from the events received"
}
