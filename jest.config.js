// Tests are compiled by `tsc` together with the sources (npm test runs the build first) and
// run as native ES modules: worker threads and child processes then load the same
// JavaScript that ships, and no second TypeScript pipeline can drift from `tsc`.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 30000,
  maxWorkers: 2,
  verbose: false,
};
