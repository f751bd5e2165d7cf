module functionstream.dev/sdk

go 1.24
