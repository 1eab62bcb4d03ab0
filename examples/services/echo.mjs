// An example service module: `echo.say` answers with the payload it was given.
// Run it: natsmesh agent examples/services/echo.mjs [--weight 3]
// A service module's default export describes the service: { service, version, methods, events? }.
export default {
  service: "echo",
  version: "1.0.0",
  methods: {
    say: (payload) => payload,
  },
};
