/** The SSH transport (see ../README.md): what the rest of factory imports from this folder. */
export * from './ssh-transport.js';
