// faaslab's re-creation of SeBS's 110.dynamic-html in Node.js (not SeBS's file).
const Mustache = require('mustache'),
  fs = require('fs'),
  path = require('path');

function random(b, e) {
  return Math.round(Math.random() * (e - b) + b);
}

exports.handler = async function (event) {
  const random_numbers = new Array(event.random_len);
  for (let i = 0; i < event.random_len; ++i) {
    random_numbers[i] = random(0, 100);
  }
  const input = {
    cur_time: new Date().toLocaleString(),
    username: event.username,
    random_numbers: random_numbers,
  };
  // templates/ is copied beside function.js by init.sh.
  const file = path.resolve(__dirname, 'templates', 'template.html');
  return new Promise((resolve, reject) => {
    fs.readFile(file, 'utf-8', function (err, data) {
      if (err) reject(err);
      resolve(Mustache.render(data, input));
    });
  });
};
