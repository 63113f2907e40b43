/* The fixed paper catalogue of ScholarLite: descriptions written for this demo site. */
window.PAPERS = [
  { id: "cogvlm", title: "CogVLM: Visual Expert for Pretrained Language Models",
    authors: "W. Wang, Q. Lv, W. Yu, et al.", venue: "NeurIPS 2024", year: 2023,
    abstract: "A vision-language foundation model that adds a trainable visual expert module to the attention and feed-forward layers of a frozen language model, so image and text features fuse deeply without hurting language ability." },
  { id: "cogagent", title: "CogAgent: A Visual Language Model for GUI Agents",
    authors: "W. Hong, W. Wang, Q. Lv, et al.", venue: "CVPR 2024", year: 2023,
    abstract: "An 18-billion-parameter model built on CogVLM with an extra high-resolution cross-attention branch, so it can read small text on screenshots and act on web pages and phone screens." },
  { id: "cogview", title: "CogView: Mastering Text-to-Image Generation via Transformers",
    authors: "M. Ding, Z. Yang, W. Hong, et al.", venue: "NeurIPS 2021", year: 2021,
    abstract: "A large transformer that generates images from Chinese text descriptions, with techniques for stable training at scale." },
  { id: "glm130b", title: "GLM-130B: An Open Bilingual Pre-trained Model",
    authors: "A. Zeng, X. Liu, Z. Du, et al.", venue: "ICLR 2023", year: 2022,
    abstract: "A bilingual English and Chinese language model with 130 billion parameters, trained with a general language model objective." },
  { id: "mind2web", title: "Mind2Web: Towards a Generalist Agent for the Web",
    authors: "X. Deng, Y. Gu, B. Zheng, et al.", venue: "NeurIPS 2023", year: 2023,
    abstract: "A dataset of open-ended tasks on real websites, used to train and evaluate agents that follow language instructions on the web." },
  { id: "aitw", title: "Android in the Wild: A Large-Scale Dataset for Android Device Control",
    authors: "C. Rawles, A. Li, D. Rodriguez, et al.", venue: "NeurIPS 2023", year: 2023,
    abstract: "Human demonstrations of device control on Android phones: screenshots paired with tap, swipe and typing actions." },
  { id: "eva-clip", title: "EVA-CLIP: Improved Training Techniques for CLIP at Scale",
    authors: "Q. Sun, Y. Fang, L. Wu, et al.", venue: "arXiv", year: 2023,
    abstract: "Training recipes that make contrastive image-text models cheaper to train and stronger at zero-shot classification." },
  { id: "llava", title: "Visual Instruction Tuning",
    authors: "H. Liu, C. Li, Q. Wu, Y. J. Lee", venue: "NeurIPS 2023", year: 2023,
    abstract: "Instruction-following data generated with a language model teaches a vision-language assistant to chat about images." },
  { id: "seeclick", title: "SeeClick: Harnessing GUI Grounding for Advanced Visual GUI Agents",
    authors: "K. Cheng, Q. Sun, Y. Chu, et al.", venue: "ACL 2024", year: 2024,
    abstract: "A screenshot-only GUI agent and the ScreenSpot benchmark for locating interface elements from instructions." }
];

/* Title matches rank above abstract matches; within each group the catalogue order stands. */
window.searchPapers = function (query) {
  var words = query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  if (words.length === 0) return [];
  function hits(text) {
    text = text.toLowerCase();
    return words.every(function (w) { return text.indexOf(w) >= 0; });
  }
  var inTitle = PAPERS.filter(function (p) { return hits(p.title); });
  var inAbstract = PAPERS.filter(function (p) { return !hits(p.title) && hits(p.title + " " + p.abstract + " " + p.authors); });
  return inTitle.concat(inAbstract);
};
