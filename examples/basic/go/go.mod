module functionstream.dev/examples/basic

go 1.24

require functionstream.dev/sdk v0.0.0

replace functionstream.dev/sdk => ../../../sdks/go
