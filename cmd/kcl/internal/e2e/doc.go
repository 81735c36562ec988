// Package e2e runs `kcl multilang` end to end against the local emulators,
// with real MultiLangDaemon clients as its children: a Node processor written
// on Amazon's aws-kcl (testdata/multilang/processor.js) and the standard-library
// Python processor of examples/multilang-python (through the test wrapper
// testdata/multilang/processor.py). The tests build the kcl binary, write a
// properties file, put checker payloads into a fresh stream, run the binary as
// a user would and judge what the children recorded with testkit/checker:
// delivery without faults, through a split and a merge, with a child killed
// mid-batch, a hung child, garbage on a child's stdout, a checkpoint beyond
// the delivered range, and a SIGTERMed host's final checkpoints and released
// leases.
//
// The package has tests only. Run it with the emulators up (see testkit/testenv):
//
//	cd cmd/kcl && go test -race ./internal/e2e
//
// Node.js with `npm ci` run in the repository root (for aws-kcl) and python3
// must be present; like the emulators, their absence skips the tests by hand
// and fails them under KCL_REQUIRE_EMULATORS=1 (CI).
package e2e
