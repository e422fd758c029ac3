// faaslab's re-creation of SeBS's 311.compression in Node.js (not SeBS's file):
// download a directory, pack it (a simple length-prefixed format, gzip'ed
// with zlib, as SeBS's Node.js version does), upload the archive.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { v4: uuidv4 } = require('uuid');
const storage = require('./storage');

const storage_handler = new storage.storage();

function walk(directory, visit, base = '') {
  for (const entry of fs.readdirSync(directory).sort()) {
    const full = path.join(directory, entry);
    if (fs.statSync(full).isDirectory()) walk(full, visit, path.join(base, entry));
    else visit(full, path.join(base, entry));
  }
}

function createArchive(sourceDir, outputPath) {
  const chunks = [];
  walk(sourceDir, (full, relative) => {
    const name = Buffer.from(relative);
    const content = fs.readFileSync(full);
    const nameLength = Buffer.alloc(4);
    nameLength.writeUInt32BE(name.length, 0);
    const contentLength = Buffer.alloc(4);
    contentLength.writeUInt32BE(content.length, 0);
    chunks.push(nameLength, name, contentLength, content);
  });
  fs.writeFileSync(outputPath, zlib.gzipSync(Buffer.concat(chunks), { level: 9 }));
}

exports.handler = async function (event) {
  const bucket = event.bucket.bucket;
  const input_prefix = event.bucket.input;
  const output_prefix = event.bucket.output;
  const key = event.object.key;

  const download_path = path.join('/tmp', `${key}-${uuidv4()}`);
  fs.mkdirSync(download_path, { recursive: true });
  const s3_download_begin = Date.now();
  await storage_handler.download_directory(bucket, path.join(input_prefix, key), download_path);
  const s3_download_stop = Date.now();

  let size = 0;
  walk(download_path, (full) => {
    size += fs.statSync(full).size;
  });
  const compress_begin = Date.now();
  const archive_name = `${key}.tar.gz`;
  const archive_path = path.join('/tmp', `${uuidv4()}-${archive_name}`);
  createArchive(download_path, archive_path);
  const compress_end = Date.now();
  const archive_size = fs.statSync(archive_path).size;

  const s3_upload_begin = Date.now();
  const [key_name, uploadPromise] = storage_handler.upload(
    bucket,
    path.join(output_prefix, archive_name),
    archive_path,
  );
  await uploadPromise;
  const s3_upload_stop = Date.now();

  return {
    result: { bucket: bucket, key: key_name },
    measurement: {
      download_time: (s3_download_stop - s3_download_begin) * 1000,
      download_size: size,
      upload_time: (s3_upload_stop - s3_upload_begin) * 1000,
      upload_size: archive_size,
      compute_time: (compress_end - compress_begin) * 1000,
    },
  };
};
