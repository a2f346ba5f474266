/**
 * helpArgv turns the ways people ask for help into oclif's: `factory help plan apply` →
 * `factory plan apply --help`, and `factory help` → `factory --help` (no help plugin is shipped).
 */
export function helpArgv(argv: string[]): string[] {
  if (argv[0] !== 'help') return argv;
  const rest = argv.slice(1).filter((a) => !a.startsWith('-'));
  return [...rest, '--help'];
}
