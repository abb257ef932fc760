// candles-web chart page: a snapshot of the newest candles over a WebSocket, then updates
// (whole candles, official replacing live in place). Everything is served by candles-web.
'use strict';
(function () {
  const LWC = window.LightweightCharts;
  const params = new URLSearchParams(location.search);
  const seriesSelect = document.getElementById('series');
  const zoneSelect = document.getElementById('zone');
  const statusEl = document.getElementById('status');
  const legendEl = document.getElementById('legend');
  const chartEl = document.getElementById('chart');
  const ZONE_KEY = 'candles-web.zone';
  let zone = params.get('tz') || localStorage.getItem(ZONE_KEY) || 'local';
  if (zone !== 'utc') zone = 'local';
  zoneSelect.value = zone;

  const UP = '#26a69a', DOWN = '#ef5350';
  const LIVE_UP = 'rgba(240, 185, 11, 0.30)', LIVE_DOWN = 'rgba(240, 185, 11, 0.30)';
  const LIVE_EDGE = '#f0b90b';

  function setStatus(text, cls) {
    statusEl.textContent = text;
    statusEl.className = 'status ' + (cls || '');
  }

  const pad = (n) => String(n).padStart(2, '0');
  function parts(sec) {
    const d = new Date(sec * 1000);
    return zone === 'utc'
      ? { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() }
      : { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds() };
  }
  function fullTime(sec) {
    const p = parts(sec);
    return p.y + '-' + pad(p.mo) + '-' + pad(p.d) + ' ' + pad(p.h) + ':' + pad(p.mi) +
      (p.s ? ':' + pad(p.s) : '') + (zone === 'utc' ? ' UTC' : '');
  }
  function tickMark(sec, type) {
    const p = parts(sec);
    switch (type) {
      case 0: return String(p.y);
      case 1: return p.y + '-' + pad(p.mo);
      case 2: return pad(p.mo) + '-' + pad(p.d);
      case 4: return pad(p.h) + ':' + pad(p.mi) + ':' + pad(p.s);
      default: return pad(p.h) + ':' + pad(p.mi);
    }
  }

  const chart = LWC.createChart(chartEl, {
    autoSize: true,
    layout: { background: { color: '#131722' }, textColor: '#d1d4dc' },
    grid: { vertLines: { color: '#1f2430' }, horzLines: { color: '#1f2430' } },
    timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: tickMark },
    localization: { timeFormatter: fullTime },
    crosshair: { mode: 0 },
  });
  const candles = chart.addSeries(LWC.CandlestickSeries, {
    upColor: UP, downColor: DOWN, borderUpColor: UP, borderDownColor: DOWN,
    wickUpColor: UP, wickDownColor: DOWN,
  });
  const volume = chart.addSeries(LWC.HistogramSeries, {
    priceFormat: { type: 'volume' }, priceScaleId: 'volume', lastValueVisible: false, priceLineVisible: false,
  });
  chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });

  // The candles drawn, by open time (ms): the objects of FORMAT JSON.
  let byTime = new Map();

  function bar(c) {
    const live = c.status !== 'official';
    const up = Number(c.close) >= Number(c.open);
    const b = {
      time: c.open_time / 1000,
      open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close),
    };
    if (live) {
      b.color = up ? LIVE_UP : LIVE_DOWN;
      b.borderColor = LIVE_EDGE;
      b.wickColor = LIVE_EDGE;
    }
    return b;
  }
  function vol(c) {
    const live = c.status !== 'official';
    const up = Number(c.close) >= Number(c.open);
    return {
      time: c.open_time / 1000,
      value: Number(c.volume),
      color: live ? 'rgba(240, 185, 11, 0.5)' : (up ? 'rgba(38, 166, 154, 0.5)' : 'rgba(239, 83, 80, 0.5)'),
    };
  }
  function legend(c) {
    if (!c) { legendEl.textContent = ''; return; }
    legendEl.textContent = fullTime(c.open_time / 1000) + '  O ' + c.open + '  H ' + c.high +
      '  L ' + c.low + '  C ' + c.close + '  V ' + c.volume + '  (' + c.status + ')';
  }
  function redraw() {
    const all = Array.from(byTime.values()).sort((a, b) => a.open_time - b.open_time);
    candles.setData(all.map(bar));
    volume.setData(all.map(vol));
    legend(all[all.length - 1]);
    markDrawn(all.length);
  }
  // For tests and tools: how many candles are drawn, and how much of the canvas is painted
  // (measured once the chart has rendered: a few frames may pass first).
  function markDrawn(n) {
    document.body.dataset.candles = String(n);
    let tries = 0;
    const measure = () => {
      try {
        const canvas = chart.takeScreenshot();
        const img = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const bg = [img[0], img[1], img[2]];
        let painted = 0;
        for (let i = 0; i < img.length; i += 16) {
          if (Math.abs(img[i] - bg[0]) + Math.abs(img[i + 1] - bg[1]) + Math.abs(img[i + 2] - bg[2]) > 30) painted++;
        }
        if (painted > 0 || ++tries >= 20) document.body.dataset.painted = String(painted);
        else setTimeout(measure, 50);
      } catch (e) {
        document.body.dataset.painted = 'error: ' + e;
      }
    };
    requestAnimationFrame(measure);
  }
  const KEEP = 5000;
  function apply(list) {
    for (const c of list) byTime.set(c.open_time, c);
    if (byTime.size > KEEP) {
      const times = Array.from(byTime.keys()).sort((a, b) => a - b);
      for (const t of times.slice(0, byTime.size - KEEP)) byTime.delete(t);
    }
  }
  function applyUpdate(list) {
    const before = byTime.size ? Math.max(...byTime.keys()) : -Infinity;
    apply(list);
    const newest = Math.max(...byTime.keys());
    // Bars at or after the newest drawn one update in place; an older one (a gap filled,
    // a correction) redraws everything.
    if (list.some((c) => c.open_time < before)) { redraw(); return; }
    for (const c of list.sort((a, b) => a.open_time - b.open_time)) {
      try {
        candles.update(bar(c));
        volume.update(vol(c));
      } catch (e) {
        redraw();
        return;
      }
    }
    legend(byTime.get(newest));
    document.body.dataset.candles = String(byTime.size);
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  let key = params.get('key') || '';
  let socket = null;
  let retry = 500;
  let fitted = false;

  function connect() {
    if (!key) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.replace(/[^/]*$/, '');
    socket = new WebSocket(proto + '//' + location.host + base + 'ws?key=' + encodeURIComponent(key));
    setStatus('connecting');
    socket.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === 'snapshot') {
        // A fresh snapshot (first connection or a reconnect) replaces everything.
        byTime = new Map();
        apply(m.candles);
        redraw();
        if (!fitted) {
          // Many candles: show them all; a few: a readable bar width, newest at the right.
          if (m.candles.length >= 60) chart.timeScale().fitContent();
          else { chart.timeScale().applyOptions({ barSpacing: 24 }); chart.timeScale().scrollToRealTime(); }
          fitted = true;
        }
        retry = 500;
        setStatus('live', 'live');
      } else if (m.type === 'update') {
        applyUpdate(m.candles);
      }
    };
    socket.onclose = (ev) => {
      setStatus('reconnecting' + (ev.reason ? ' (' + ev.reason + ')' : ''), 'error');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  zoneSelect.addEventListener('change', () => {
    zone = zoneSelect.value;
    localStorage.setItem(ZONE_KEY, zone);
    chart.applyOptions({ localization: { timeFormatter: fullTime }, timeScale: { tickMarkFormatter: tickMark } });
    legend(byTime.get(Math.max(...byTime.keys())));
  });
  seriesSelect.addEventListener('change', () => {
    const p = new URLSearchParams(location.search);
    p.set('key', seriesSelect.value);
    location.search = p.toString();
  });

  fetch('api/series').then((r) => r.json()).then((list) => {
    seriesSelect.textContent = '';
    if (!Array.isArray(list) || list.length === 0) {
      seriesSelect.appendChild(new Option('no candle series', ''));
      setStatus('no series', 'error');
      return;
    }
    if (!key) key = list[0].key;
    for (const s of list) {
      const label = s.key + (s.interval ? ' (' + s.interval + ')' : '') + (s.source ? ' ← ' + s.source : '');
      const o = new Option(label, s.key);
      if (s.key === key) o.selected = true;
      seriesSelect.appendChild(o);
    }
    if (!list.some((s) => s.key === key)) {
      const o = new Option(key, key);
      o.selected = true;
      seriesSelect.appendChild(o);
    }
    connect();
  }).catch((e) => {
    setStatus('cannot list series: ' + e, 'error');
    connect();
  });
})();
