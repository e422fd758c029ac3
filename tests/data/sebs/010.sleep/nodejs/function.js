// faaslab's re-creation of SeBS's 010.sleep in Node.js (not SeBS's file).
const timer = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.handler = async function (event) {
  const sleep = event.sleep;
  return timer(sleep * 1000);
};
