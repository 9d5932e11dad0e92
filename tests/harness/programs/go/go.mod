// This go.mod only fences program.go off from the main module: the program needs the generated
// Go SDK (sdk/go, its own module) and the runner's main function, which the harness supplies
// when it builds the program in a throwaway module (see buildGoRunner in tests/harness).
module harness.local/program

go 1.26
