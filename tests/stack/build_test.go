package stack

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSamBuildTargets runs each build-<LogicalId> target as `sam build` does
// (make with ARTIFACTS_DIR) and checks that the result is what provided.al2023
// on arm64 executes: a static, stripped linux/arm64 ELF named bootstrap.
func TestSamBuildTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries; skipped with -short")
	}
	for _, f := range functions {
		t.Run(f.id, func(t *testing.T) {
			artifacts := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "-C", repoRoot, "build-"+f.id, "ARTIFACTS_DIR="+artifacts)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", f.id, err, out)
			}
			bin, err := elf.Open(filepath.Join(artifacts, "bootstrap"))
			if err != nil {
				t.Fatalf("ARTIFACTS_DIR/bootstrap: %v", err)
			}
			defer bin.Close()
			if bin.Machine != elf.EM_AARCH64 || bin.OSABI != elf.ELFOSABI_NONE && bin.OSABI != elf.ELFOSABI_LINUX {
				t.Errorf("bootstrap is %v/%v, want linux arm64", bin.OSABI, bin.Machine)
			}
			for _, p := range bin.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("bootstrap is dynamically linked (has PT_INTERP): build with CGO_ENABLED=0")
				}
			}
			if s := bin.Section(".symtab"); s != nil {
				t.Error("bootstrap keeps its symbol table: build with -ldflags \"-s -w\"")
			}
		})
	}
}
