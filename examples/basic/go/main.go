// Command basic is the "basic" Function Stream example in Go: it adds 1 to
// "money" in a JSON person record (see person.go and README.md).
package main

import "functionstream.dev/sdk/fs"

func init() {
	fs.Handle(func(input []byte) ([][]byte, error) {
		out, err := person(input)
		if err != nil {
			return nil, err // this input fails with the error's text
		}
		return [][]byte{out}, nil
	})
}

// main is required by the Go toolchain; a reactor module never calls it.
func main() {}
