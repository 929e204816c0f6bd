// A crew's photos of the work, sent as they are taken: shrunk on the phone first (a
// camera's 8 MB photo becomes some hundreds of KB, which a weak 4G signal carries), one
// at a time, each with its own "try again"; the step's form then sends only their ids.
(function () {
  "use strict";
  const MAX_SIDE = 2560;
  const SMALL_ENOUGH = 1500000;

  async function shrink(file) {
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      if (scale === 1 && file.size <= SMALL_ENOUGH) return file;
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.85));
      return blob || file;
    } catch (_) {
      return file; // a format the browser cannot draw: the service decides
    }
  }

  function camera(input) {
    const form = input.form;
    const taken = form.querySelector(".taken");
    const token = form.querySelector("input[name=csrf_token]").value;
    const max = Number(input.dataset.max || 6);
    let sending = 0;

    function count() {
      return taken.querySelectorAll("input[name=media_id]").length + sending;
    }

    async function send(file, item) {
      item.replaceChildren(Object.assign(document.createElement("span"), {
        className: "sending", textContent: input.dataset.busy,
      }));
      sending += 1;
      try {
        const body = new FormData();
        body.append("photo", await shrink(file), file.name || "photo.jpg");
        const answer = await fetch(input.dataset.upload, {
          method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": token },
        });
        const sent = await answer.json().catch(() => ({}));
        if (!answer.ok) throw new Error(sent.detail || String(answer.status));
        const img = Object.assign(document.createElement("img"), {
          src: sent.thumbnail, width: 96, height: 72, alt: file.name || "",
        });
        const id = Object.assign(document.createElement("input"), {
          type: "hidden", name: "media_id", value: sent.id,
        });
        const remove = Object.assign(document.createElement("button"), {
          type: "button", className: "link", textContent: input.dataset.remove,
        });
        remove.addEventListener("click", () => item.remove());
        item.replaceChildren(img, id, remove);
      } catch (error) {
        const why = Object.assign(document.createElement("span"), {
          className: "error", textContent: `${input.dataset.failed} ${error.message}`,
        });
        const again = Object.assign(document.createElement("button"), {
          type: "button", textContent: input.dataset.retry,
        });
        again.addEventListener("click", () => send(file, item));
        item.replaceChildren(why, again);
      } finally {
        sending -= 1;
      }
    }

    input.addEventListener("change", async () => {
      const files = Array.from(input.files || []);
      input.value = "";
      for (const file of files) {
        if (count() >= max) break;
        const item = document.createElement("figure");
        item.className = "photo-item";
        taken.append(item);
        await send(file, item);
      }
    });

    form.addEventListener("submit", (event) => {
      const missing = input.dataset.required && !taken.querySelector("input[name=media_id]");
      if (sending > 0 || missing) {
        event.preventDefault();
        if (missing) {
          input.setCustomValidity(input.dataset.required);
          input.reportValidity();
          input.addEventListener("change", () => input.setCustomValidity(""), { once: true });
        }
      }
    });
  }

  document.querySelectorAll("input.camera").forEach(camera);
})();
