//go:build integration

package stack

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// readSamconfig reads the flat TOML that samconfig.toml is: [a.b.c] tables of
// key = "string" | true | false | number. Anything else fails the test, so the
// file stays within what this reader (and a reviewer) understands.
func readSamconfig(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tables := map[string]map[string]string{}
	var table map[string]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			name := strings.Trim(line, "[]")
			table = map[string]string{}
			tables[name] = table
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not key = value: %q", path, n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			} else if _, err := strconv.ParseFloat(v, 64); err != nil && v != "true" && v != "false" {
				t.Fatalf("%s:%d: value %q is not a string, number or boolean", path, n, v)
			}
			if table == nil {
				if k != "version" {
					t.Fatalf("%s:%d: %s outside a table", path, n, k)
				}
				tables[""] = map[string]string{k: v}
				continue
			}
			table[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}

// TestSamconfig: both environments deploy with confirmation, the IAM
// capability SAM's roles need, and parameter overrides that the template
// accepts; default is a dry run, prod enforces.
func TestSamconfig(t *testing.T) {
	cfg := readSamconfig(t, repoRoot+"/samconfig.toml")
	if v := cfg[""]["version"]; v != "0.1" {
		t.Errorf("version %q, want 0.1", v)
	}
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []struct{ name, stack, dryRun string }{
		{"default", "acronis-mfa", "true"},
		{"prod", "acronis-mfa-prod", "false"},
	} {
		t.Run(env.name, func(t *testing.T) {
			deploy := cfg[env.name+".deploy.parameters"]
			if deploy == nil {
				t.Fatalf("no [%s.deploy.parameters]", env.name)
			}
			if deploy["stack_name"] != env.stack {
				t.Errorf("stack_name %q, want %q", deploy["stack_name"], env.stack)
			}
			if !strings.Contains(deploy["capabilities"], "CAPABILITY_IAM") {
				t.Errorf("capabilities %q lack CAPABILITY_IAM: SAM creates the function roles", deploy["capabilities"])
			}
			if deploy["confirm_changeset"] != "true" {
				t.Errorf("confirm_changeset %q, want true", deploy["confirm_changeset"])
			}
			if deploy["resolve_s3"] != "true" {
				t.Errorf("resolve_s3 %q, want true", deploy["resolve_s3"])
			}
			overrides := map[string]string{}
			for _, kv := range strings.Fields(deploy["parameter_overrides"]) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("parameter_overrides item %q is not Key=Value", kv)
				}
				overrides[k] = strings.Trim(v, `"'`)
			}
			if overrides["DryRun"] != env.dryRun {
				t.Errorf("DryRun=%q, want %q", overrides["DryRun"], env.dryRun)
			}
			// Every override names a parameter and passes its constraints and the
			// template's Rules.
			if _, err := newEvaluation(tpl, overrides); err != nil {
				t.Errorf("parameter_overrides %q: %v", deploy["parameter_overrides"], err)
			}
		})
	}
	if b := cfg["default.build.parameters"]; b["cached"] != "true" || b["parallel"] != "true" {
		t.Errorf("[default.build.parameters] %v, want cached and parallel", b)
	}
}
