package cli

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
)

func TestPropertiesErrorsAreOneLineEachNamingFileLineAndKey(t *testing.T) {
	err := errors.Join(
		&properties.ValueError{Key: "maxRecords", Line: 7, Value: "ten", Reason: "not a whole number"},
		errors.Join(&properties.MissingKeyError{Key: "executableName"},
			&properties.MissingKeyError{Key: "streamName", Alt: "streamArn"}),
		&properties.SyntaxError{Line: 3, Reason: `malformed \uXXXX escape`},
		fmt.Errorf("properties: %w", &os.PathError{Op: "open", Path: "other.properties", Err: os.ErrNotExist}),
	)
	got := propertiesErrors("app.properties", err)
	want := []string{
		`app.properties:7: maxRecords: "ten": not a whole number`,
		`app.properties: executableName: required key is missing`,
		`app.properties: streamName (or streamArn): required key is missing`,
		`app.properties:3: malformed \uXXXX escape`,
		`other.properties: file does not exist`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("propertiesErrors =\n%q\nwant\n%q", got, want)
	}
}

func TestNewLoggerRejectsUnknownLevelsAndFormats(t *testing.T) {
	for _, tt := range []struct{ level, format string }{
		{"verbose", "console"}, {"info", "xml"}, {"", "json"}, {"panic", "json"},
	} {
		_, err := newLogger(tt.level, tt.format, os.Stderr)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("newLogger(%q, %q) = %v, want a usage error", tt.level, tt.format, err)
		}
	}
	for _, level := range []string{"debug", "info", "warn", "error"} {
		for _, format := range []string{"console", "json"} {
			if _, err := newLogger(level, format, os.Stderr); err != nil {
				t.Errorf("newLogger(%q, %q): %v", level, format, err)
			}
		}
	}
}
