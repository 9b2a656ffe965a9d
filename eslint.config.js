import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'jest.config.js', 'eslint.config.js'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'No default exports: name what you export.' },
      ],
    },
  },
  {
    files: ['src/ca/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/issuer/**', '**/secrets/**'], message: 'src/ca never imports issuer or secrets.' }] }],
    },
  },
  {
    files: ['src/secrets/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/ca/**', '**/issuer/**'], message: 'src/secrets imports nothing from ca or issuer.' }] }],
    },
  },
);
