package recipe

// ServersForExamples returns the client addresses of the coordd the examples
// (package recipe_test) run against: the tests' shared cluster.
func ServersForExamples() []string {
	addrs, err := sharedAddrs()
	if err != nil {
		panic(err)
	}
	return addrs
}
