/** The SSH transport (see ../README.md): what the rest of factory imports from this folder. */
export { executorBundle, remoteExecutorPath, type ExecutorBundle } from './bundle.js';
export {
  DOCKER_DRIVER_MISSING,
  EXIT_DOCKER_DRIVER_MISSING,
  EXIT_EXECUTOR_MISSING,
  EXIT_NODE_MISSING,
  EXIT_UPLOAD_FAILED,
  LAUNCH_MARKER,
  launcherCommand,
  SEND_PREFIX,
  shellQuote,
  UPLOAD_FAILED_PREFIX,
  type LauncherOptions,
} from './launcher.js';
export { SshTransport } from './ssh-transport.js';
export { resolveSshTarget, type ResolvedSshTarget, type SshTarget, type SshTransportOptions } from './target.js';
