package testutil

import "strings"

// TableRows returns the cells of every line of the ASCII table under
// title in a summary, its header first; nil when there is no such table.
func TableRows(summary, title string) [][]string {
	_, rest, ok := strings.Cut(summary, "\n"+title)
	if !ok {
		return nil
	}
	var rows [][]string
	for _, l := range strings.Split(rest, "\n") {
		if l == "" {
			break
		}
		if !strings.HasPrefix(l, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}
