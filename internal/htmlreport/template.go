package htmlreport

import (
	_ "embed"
	"html/template"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"
)

var (
	//go:embed page.tmpl
	pageSource string
	//go:embed style.css
	styleSource string
	//go:embed bothends.tmpl
	bothEndsSource string
)

// pageTemplate holds the pages. The style sheet is part of the
// template's own text, trusted, and every value goes through
// html/template's contextual escaping.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"addpx": func(a px, b float64) px { return a + px(b) },
	"subpx": func(a px, b any) px {
		switch v := b.(type) {
		case px:
			return a - v
		case int:
			return a - px(v)
		case float64:
			return a - px(v)
		}
		return a
	},
	"dur":        func(d time.Duration) string { return format.Duration(d) },
	"addint":     func(a, b int) int { return a + b },
	"maxTTFDots": func() int { return maxTTFDots },
	"ttfMeaning": func() string { return diagnose.TimeToFailureMeaning },
}).Parse(strings.Replace(pageSource, "/*STYLE*/", styleSource, 1) + bothEndsSource))
