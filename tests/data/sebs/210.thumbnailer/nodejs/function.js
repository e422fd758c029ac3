// faaslab's re-creation of SeBS's 210.thumbnailer in Node.js (not SeBS's file).
const sharp = require('sharp'),
  path = require('path'),
  storage = require('./storage');

const storage_handler = new storage.storage();

exports.handler = async function (event) {
  const bucket = event.bucket.bucket;
  const input_prefix = event.bucket.input;
  const output_prefix = event.bucket.output;
  const key = event.object.key;
  const width = event.object.width;
  const height = event.object.height;
  const pos = key.lastIndexOf('.');
  const upload_key = key.substr(0, pos < 0 ? key.length : pos) + '.png';

  const sharp_resizer = sharp().resize(width, height).png();
  const read_promise = storage_handler.downloadStream(bucket, path.join(input_prefix, key));
  const [writeStream, promise, uploadName] = storage_handler.uploadStream(
    bucket,
    path.join(output_prefix, upload_key),
  );
  read_promise.then((input_stream) => {
    input_stream.pipe(sharp_resizer).pipe(writeStream);
  });
  await promise;
  return { bucket: output_prefix, key: uploadName };
};
