/**
 * The agent side of `factory image push`: image-load chunks are appended, in order, to a staged
 * archive `<workDir>/images/<sha256>.tar.part`; the last chunk makes the executor check the archive's
 * size and sha256, load it into the engine, and check that the image id the engine reports is the id
 * the control side saved. The staged file is removed afterwards, whatever happened.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../errors.js';
import type { ImageInfo, ImageLoadResult, Request } from '../protocol/messages.js';

/** ImageEngine is what ImageUploads needs of the engine (the docker driver provides it). */
export interface ImageEngine {
  imageInfo(image: string): Promise<ImageInfo>;
  loadArchive(file: string): Promise<void>;
}

/** ImageLoadRequest is one image-load chunk. */
export type ImageLoadRequest = Extract<Request, { type: 'image-load' }>;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** sha256File hashes a file as a stream. */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** ImageUploads receives image-load chunks into staged archives and loads them when complete. */
export class ImageUploads {
  private readonly dir: string;

  constructor(
    workDir: string,
    private readonly engine: ImageEngine,
  ) {
    this.dir = path.join(workDir, 'images');
  }

  /** receive handles one chunk; on the last one it verifies, loads and returns the loaded image's id. */
  async receive(req: ImageLoadRequest): Promise<ImageLoadResult> {
    if (typeof req.image !== 'string' || req.image === '') throw new FactoryError('image-load: missing image', { code: 'E_BAD_REQUEST' });
    if (typeof req.sha256 !== 'string' || !SHA256_HEX.test(req.sha256)) throw new FactoryError('image-load: sha256 must be 64 lowercase hex digits', { code: 'E_BAD_REQUEST' });
    if (!Number.isInteger(req.offset) || req.offset < 0 || !Number.isInteger(req.size) || req.size < 0) {
      throw new FactoryError('image-load: offset and size must be non-negative integers', { code: 'E_BAD_REQUEST' });
    }
    const staged = path.join(this.dir, `${req.sha256}.tar.part`);
    const data = Buffer.from(typeof req.data === 'string' ? req.data : '', 'base64');
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      if (req.offset === 0) fs.writeFileSync(staged, data);
      else {
        let have: number;
        try {
          have = fs.statSync(staged).size;
        } catch {
          throw new FactoryError(`image-load ${req.image}: chunk at offset ${req.offset} but nothing staged (start at offset 0)`, { code: 'E_IMAGE_UPLOAD' });
        }
        if (have !== req.offset) throw new FactoryError(`image-load ${req.image}: chunk at offset ${req.offset}, but ${have} bytes are staged`, { code: 'E_IMAGE_UPLOAD' });
        fs.appendFileSync(staged, data);
      }
    } catch (err) {
      if (err instanceof FactoryError) throw err;
      fs.rmSync(staged, { force: true });
      const e = err as NodeJS.ErrnoException;
      throw new FactoryError(`image-load ${req.image}: cannot stage the archive in ${this.dir}: ${e.code === 'ENOSPC' ? 'no space left on device' : e.message}`, {
        code: e.code === 'ENOSPC' ? 'E_NOSPC' : 'E_IMAGE_UPLOAD',
      });
    }
    const received = req.offset + data.length;
    if (!req.done) return { image: req.image, received, loaded: false };
    try {
      if (received !== req.size) throw new FactoryError(`image-load ${req.image}: received ${received} bytes, expected ${req.size}`, { code: 'E_IMAGE_DIGEST' });
      const digest = await sha256File(staged);
      if (digest !== req.sha256) throw new FactoryError(`image-load ${req.image}: archive sha256 ${digest} does not match ${req.sha256}`, { code: 'E_IMAGE_DIGEST' });
      await this.engine.loadArchive(staged);
      const info = await this.engine.imageInfo(req.image);
      if (!info.present) throw new FactoryError(`image-load ${req.image}: the engine loaded the archive but has no image ${req.image}`, { code: 'E_IMAGE_LOAD' });
      if (info.id !== req.imageId) {
        throw new FactoryError(`image-load ${req.image}: loaded image id ${info.id} does not match ${req.imageId}`, { code: 'E_IMAGE_DIGEST' });
      }
      return { image: req.image, received, loaded: true, id: info.id };
    } finally {
      fs.rmSync(staged, { force: true });
    }
  }
}
