// The Confer console: an agent's own calls and chats, or a supervisor's monitored calls, with a
// Remove button for every participant the user may remove, updated live from CometD.
//
// Rules the page keeps:
// * Nothing is removed from the view before the server says so: a removal's success reply, or a
//   notification. A refusal shows the server's statusMessage next to the participant.
// * Notifications carry each conference as the user sees it now; applying one twice changes
//   nothing, so the full refetch after every (re-)handshake and the notifications queued behind it
//   may overlap freely.
// * Every change is announced in the "Recent activity" log (an aria-live region); re-rendering
//   keeps the keyboard focus where it was, or moves it to the conference's heading when the
//   focused control went away with its participant.

import { Gws } from './gws.js';
import { Bayeux, SessionEnded } from './bayeux.js';

const NOTIFICATIONS_URL = '/api/v2/notifications';
const CHANNELS = ['/v2/me/calls', '/v2/me/chats'];
/** Set while signed in, so that a reload resumes the session instead of asking again. */
const SIGNED_IN_KEY = 'confer-console.signed-in';
const RECENT_DEVICES_KEY = 'confer-console.recent-devices';
const MAX_ACTIVITY = 30;
const MAX_RECENT_DEVICES = 8;

const gws = new Gws('/api/v2');
/** @type {Bayeux | null} */
let notifications = null;

const state = {
  user: null,
  /** The first full fetch is done (before it, the lists say "Loading…"). */
  loaded: false,
  /** Call id → { call, startedAt } (startedAt: ms on this browser's clock). */
  calls: new Map(),
  /** Chat id → { chat, messages: Map(index → log entry) }. */
  chats: new Map(),
  /** Participant key → the server's statusMessage of a refused removal. */
  refusals: new Map(),
  /** Participant keys whose removal is on its way. */
  pending: new Set(),
  /** Chat id → { text, treatAs }: the optional message to the customer on removal. */
  chatOptions: new Map(),
  /** The live updates were lost and not yet back (the banner is showing). */
  offline: false,
  /** Monitoring target (device URI) → the agent's label, from `GET /api/v2/users`. */
  agents: new Map(),
};

// --- small helpers ---------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** Builds an element; text children are text nodes (never parsed as HTML). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An id attribute from any parts (conference ids and phone numbers are not all id-safe). */
function domId(...parts) {
  return parts.map((part) => String(part).replace(/[^A-Za-z0-9_-]/g, '_')).join('--');
}

function participantKey(kind, conferenceId, participant) {
  return `${kind}|${conferenceId}|${participant}`;
}

function forgetConference(kind, conferenceId) {
  const prefix = `${kind}|${conferenceId}|`;
  for (const key of [...state.refusals.keys()]) if (key.startsWith(prefix)) state.refusals.delete(key);
}

function lastSegment(uri) {
  return String(uri || '').replace(/[?#].*$/, '').replace(/\/+$/, '').split('/').pop();
}

function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A ticking duration since `startedAt` (ms). */
function since(startedAt) {
  const seconds = (Date.now() - startedAt) / 1000;
  return h(
    'time',
    { 'data-started': startedAt, datetime: `PT${Math.max(0, Math.floor(seconds))}S` },
    formatDuration(seconds),
  );
}

function tick() {
  for (const element of document.querySelectorAll('[data-started]')) {
    const seconds = (Date.now() - Number(element.dataset.started)) / 1000;
    element.textContent = formatDuration(seconds);
    element.setAttribute('datetime', `PT${Math.max(0, Math.floor(seconds))}S`);
  }
}

function fact(term, ...description) {
  return [h('dt', {}, term), h('dd', {}, ...description)];
}

const ROLE_NAMES = { ROLE_AGENT: 'agent', ROLE_SUPERVISOR: 'supervisor', ROLE_ADMIN: 'admin' };

/** May monitor agents: supervisors, and admins (the server counts them as supervisors). */
function isSupervisor() {
  const roles = (state.user && state.user.roles) || [];
  return roles.includes('ROLE_SUPERVISOR') || roles.includes('ROLE_ADMIN');
}

/** Whether a chat participant is the signed-in user (agents carry their user URI). */
function isMe(participant) {
  return Boolean(state.user && participant.uri && lastSegment(participant.uri) === state.user.id);
}

function announce(text) {
  const log = $('activity');
  const now = new Date();
  log.append(
    h('li', {}, h('time', { datetime: now.toISOString() }, now.toLocaleTimeString()), ' ', text),
  );
  while (log.children.length > MAX_ACTIVITY) log.firstElementChild.remove();
}

/**
 * Re-renders `container` with `build`, keeping the keyboard focus (and a text field's caret) on
 * the control with the same `data-focus` key; if that control is gone (its participant left),
 * focus goes to its conference's heading, else to the section's heading.
 */
function rerender(container, build) {
  const active = document.activeElement;
  const inside = active && active !== document.body && container.contains(active);
  const key = inside ? active.dataset.focus : undefined;
  const article = inside ? active.closest('article') : null;
  const articleId = article ? article.id : null;
  const caret =
    inside && typeof active.selectionStart === 'number'
      ? [active.selectionStart, active.selectionEnd]
      : null;
  // Transcripts stay where the reader left them, or follow the newest entry when at the end.
  const scrolls = new Map();
  for (const list of container.querySelectorAll('[data-scroll]')) {
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    scrolls.set(list.dataset.scroll, atEnd ? null : list.scrollTop);
  }
  build();
  for (const list of container.querySelectorAll('[data-scroll]')) {
    const kept = scrolls.get(list.dataset.scroll);
    list.scrollTop = kept === undefined || kept === null ? list.scrollHeight : kept;
  }
  if (!inside) return;
  let target = key ? container.querySelector(`[data-focus="${CSS.escape(key)}"]`) : null;
  if (!target && articleId) {
    const again = document.getElementById(articleId);
    target = again ? again.querySelector('h3') : null;
  }
  if (!target) target = container.closest('section').querySelector('h2');
  target.focus();
  if (caret && typeof target.setSelectionRange === 'function') {
    try {
      target.setSelectionRange(caret[0], caret[1]);
    } catch {
      // Not a text field after all.
    }
  }
}

// --- voice calls -----------------------------------------------------------------------------

function partyNumber(party) {
  return party.phoneNumber || party.formattedPhoneNumber || party.digits || '';
}

/**
 * Whether the view says the user may remove parties: the owner of an established call has the
 * conferencing capabilities, a supervisor monitors it. A held call lists neither, so it gets the
 * buttons too; the server decides and a refusal is shown.
 */
function mayRemoveFromCall(call) {
  const capabilities = call.capabilities || [];
  return (
    call.state !== 'Released' &&
    (call.monitoring === true ||
      capabilities.includes('SingleStepConference') ||
      capabilities.includes('InitiateConference') ||
      call.state === 'Held')
  );
}

function yourPart(call) {
  if (call.monitoring) return call.supervisorListeningIn ? 'Monitoring, listening in' : 'Monitoring';
  const line = state.user.phoneNumber ? `On line ${state.user.phoneNumber}` : 'On the call';
  const capabilities = call.capabilities || [];
  return capabilities.includes('SingleStepConference') ? `${line}, leading the conference` : line;
}

/** Takes in a call as the user now sees it (a reply or a notification), announcing changes. */
function applyCall(call, { quiet = false } = {}) {
  const id = call.id;
  const previous = state.calls.get(id);
  const before = new Set(previous ? (previous.call.participants || []).map(partyNumber) : []);
  if (call.state === 'Released') {
    if (previous) {
      state.calls.delete(id);
      forgetConference('call', id);
      if (!quiet) announce(`Call ${id} is over for you.`);
    }
    return;
  }
  const after = new Set((call.participants || []).map(partyNumber));
  for (const number of before) {
    if (after.has(number)) continue;
    state.refusals.delete(participantKey('call', id, number));
    if (!quiet) announce(`${number} left call ${id}.`);
  }
  if (!quiet && previous) {
    for (const number of after) if (!before.has(number)) announce(`${number} joined call ${id}.`);
    if (previous.call.state !== call.state) announce(`Call ${id} is now ${call.state}.`);
  }
  if (!quiet && !previous) announce(`Call ${id} (${call.state}) is now shown.`);
  const seconds = Number(call.duration);
  const startedAt = Number.isFinite(seconds)
    ? Date.now() - seconds * 1000
    : previous
      ? previous.startedAt
      : Date.now();
  state.calls.set(id, { call, startedAt });
}

function callParticipantView(callId, party, removable) {
  const number = partyNumber(party);
  const key = participantKey('call', callId, number);
  const refusal = state.refusals.get(key);
  const pending = state.pending.has(key);
  const refusalId = domId('refusal', key);
  return h(
    'li',
    { class: 'participant' },
    h('span', { class: 'participant-name' }, party.formattedPhoneNumber || number),
    removable && number
      ? h(
          'button',
          {
            type: 'button',
            class: 'remove',
            'data-focus': `remove|${key}`,
            'aria-label': `${pending ? 'Removing' : 'Remove'} ${number} from call ${callId}`,
            'aria-describedby': refusal ? refusalId : undefined,
            'aria-disabled': pending ? 'true' : undefined,
            onclick: () => removeFromCall(callId, number),
          },
          pending ? 'Removing…' : 'Remove',
        )
      : null,
    refusal
      ? h('p', { class: 'refusal', id: refusalId }, h('strong', {}, 'Refused: '), refusal)
      : null,
  );
}

function callView(id, { call, startedAt }) {
  const headingId = domId('call', id);
  const listId = domId('call-participants', id);
  const parties = call.participants || [];
  const removable = mayRemoveFromCall(call);
  return h(
    'article',
    { class: 'conference', id: domId('call-article', id), 'aria-labelledby': headingId },
    h('h3', { id: headingId, tabindex: '-1' }, 'Call ', h('span', { class: 'conference-id' }, id)),
    h(
      'dl',
      { class: 'facts' },
      fact('Kind', `Voice${call.callType ? `, ${call.callType.toLowerCase()}` : ''}`),
      fact('State', call.state),
      fact('Duration', since(startedAt)),
      fact('You', yourPart(call)),
    ),
    h('h4', { id: listId }, `Participants (${parties.length})`),
    parties.length
      ? h(
          'ul',
          { class: 'participants', 'aria-labelledby': listId },
          parties.map((party) => callParticipantView(id, party, removable)),
        )
      : h('p', { class: 'empty' }, 'No one else is on the call.'),
  );
}

async function removeFromCall(callId, number) {
  const key = participantKey('call', callId, number);
  if (state.pending.has(key)) return;
  state.pending.add(key);
  state.refusals.delete(key);
  renderCalls();
  try {
    await gws.post(`/me/calls/${encodeURIComponent(callId)}`, {
      operationName: 'RemoveParticipantFromConference',
      participant: number,
    });
    // The server confirmed: the party is out (its notification will say the same).
    const entry = state.calls.get(callId);
    if (entry) {
      const participants = (entry.call.participants || []).filter((p) => partyNumber(p) !== number);
      applyCall({ ...entry.call, participants });
    }
  } catch (error) {
    if (error.signedOut) return sessionEnded('Your session has ended. Sign in again.');
    if (state.calls.has(callId)) {
      state.refusals.set(key, error.message);
      announce(`Removing ${number} from call ${callId} was refused: ${error.message}`);
    }
  } finally {
    state.pending.delete(key);
    renderCalls();
  }
}

function renderCalls() {
  const container = $('calls');
  rerender(container, () => {
    const entries = [...state.calls.entries()];
    if (!state.loaded) {
      container.replaceChildren(h('p', { class: 'empty' }, 'Loading…'));
    } else if (entries.length === 0) {
      container.replaceChildren(
        h(
          'p',
          { class: 'empty' },
          isSupervisor()
            ? 'No calls. Start listening in on an agent to see their call here.'
            : 'No calls right now.',
        ),
      );
    } else {
      container.replaceChildren(...entries.map(([id, entry]) => callView(id, entry)));
    }
  });
}

// --- chats -----------------------------------------------------------------------------------

function applyChat(chat, { quiet = false } = {}) {
  const id = chat.id;
  const previous = state.chats.get(id);
  if (chat.state === 'Completed') {
    if (previous) {
      state.chats.delete(id);
      state.chatOptions.delete(id);
      forgetConference('chat', id);
      if (!quiet) announce(`Chat ${id} is completed for you.`);
    }
    return;
  }
  const present = new Set((chat.participants || []).map((p) => p.participantId));
  for (const key of [...state.refusals.keys()]) {
    const [kind, conference, participant] = key.split('|');
    if (kind === 'chat' && conference === id && !present.has(participant)) state.refusals.delete(key);
  }
  if (!quiet && previous && previous.chat.state !== chat.state) {
    announce(`Chat ${id} is now ${chat.state}.`);
  }
  if (!quiet && !previous) announce(`Chat ${id} (${chat.state}) is now shown.`);
  state.chats.set(id, { chat, messages: previous ? previous.messages : new Map() });
}

function entryAuthor(entry) {
  return (entry.from && entry.from.nickname) || 'Someone';
}

/** Adds log entries (by index, so a repeated one changes nothing), announcing the new ones. */
function applyMessages(chatId, messages, { quiet = false } = {}) {
  const entry = state.chats.get(chatId);
  if (!entry) return false;
  for (const message of messages || []) {
    if (typeof message.index !== 'number' || entry.messages.has(message.index)) continue;
    entry.messages.set(message.index, message);
    if (quiet) continue;
    const who = entryAuthor(message);
    if (message.type === 'ParticipantLeft') announce(`${who} left chat ${chatId}.`);
    else if (message.type === 'ParticipantJoined') announce(`${who} joined chat ${chatId}.`);
    else if (message.text) announce(`${who} in chat ${chatId}: ${message.text}`);
  }
  return true;
}

function chatOptions(chatId) {
  return state.chatOptions.get(chatId) || { text: '', treatAs: 'Normal' };
}

function setChatOption(chatId, change) {
  state.chatOptions.set(chatId, { ...chatOptions(chatId), ...change });
}

function mayRemoveFromChat(chat, participant) {
  return (
    chat.state === 'Chatting' && participant.type === 'Agent' && participant.uri && !isMe(participant)
  );
}

function chatParticipantView(chatId, participant, removable) {
  const key = participantKey('chat', chatId, participant.participantId);
  const refusal = state.refusals.get(key);
  const pending = state.pending.has(key);
  const refusalId = domId('refusal', key);
  const name = participant.nickname || participant.participantId;
  const details = [participant.type === 'Customer' ? 'customer' : 'agent'];
  if (isMe(participant)) details.push('you');
  if (participant.visibility && participant.visibility !== 'All') details.push('seen by agents only');
  return h(
    'li',
    { class: 'participant' },
    h('span', { class: 'participant-name' }, name, ' ', h('span', { class: 'muted' }, `(${details.join(', ')})`)),
    removable
      ? h(
          'button',
          {
            type: 'button',
            class: 'remove',
            'data-focus': `remove|${key}`,
            'aria-label': `${pending ? 'Removing' : 'Remove'} ${name} from chat ${chatId}`,
            'aria-describedby': refusal ? refusalId : undefined,
            'aria-disabled': pending ? 'true' : undefined,
            onclick: () => removeFromChat(chatId, participant),
          },
          pending ? 'Removing…' : 'Remove',
        )
      : null,
    refusal
      ? h('p', { class: 'refusal', id: refusalId }, h('strong', {}, 'Refused: '), refusal)
      : null,
  );
}

function removalOptionsView(chatId) {
  const options = chatOptions(chatId);
  const textId = domId('chat-text', chatId);
  const treatId = domId('chat-treat', chatId);
  return h(
    'fieldset',
    { class: 'removal-options' },
    h('legend', {}, 'When removing an agent'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: textId }, 'Message to the customer (optional)'),
      h('input', {
        id: textId,
        type: 'text',
        maxlength: '2000',
        value: options.text,
        'data-focus': `text|${chatId}`,
        oninput: (event) => setChatOption(chatId, { text: event.target.value }),
      }),
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: treatId }, 'Treat the message as'),
      h(
        'select',
        {
          id: treatId,
          'data-focus': `treat|${chatId}`,
          onchange: (event) => setChatOption(chatId, { treatAs: event.target.value }),
        },
        ['Normal', 'System'].map((value) =>
          h('option', { value, selected: options.treatAs === value }, value),
        ),
      ),
    ),
  );
}

function logEntryView(message) {
  const who = entryAuthor(message);
  const at = new Date(message.timestampSeconds);
  const time = Number.isNaN(at.getTime())
    ? null
    : h('time', { datetime: at.toISOString() }, at.toLocaleTimeString());
  let body;
  switch (message.type) {
    case 'ParticipantJoined':
      body = h('em', {}, `${who} joined`);
      break;
    case 'ParticipantLeft':
      body = h('em', {}, `${who} left`);
      break;
    default:
      body = [h('span', { class: 'from' }, `${who}: `), message.text || ''];
  }
  const notes = [];
  if (message.visibility && message.visibility !== 'All') notes.push('agents only');
  return h(
    'li',
    { class: `log-entry log-${String(message.type || 'Other').toLowerCase()}` },
    time,
    ' ',
    body,
    notes.length ? h('span', { class: 'muted' }, ` (${notes.join(', ')})`) : null,
  );
}

function chatView(id, { chat, messages }) {
  const headingId = domId('chat', id);
  const listId = domId('chat-participants', id);
  const transcriptId = domId('chat-transcript', id);
  const participants = chat.participants || [];
  const customer = participants.find((p) => p.type === 'Customer');
  const log = [...messages.values()].sort((a, b) => a.index - b.index);
  const first = log.find((message) => Number.isFinite(message.timestampSeconds));
  const anyRemovable = participants.some((p) => mayRemoveFromChat(chat, p));
  return h(
    'article',
    { class: 'conference', id: domId('chat-article', id), 'aria-labelledby': headingId },
    h('h3', { id: headingId, tabindex: '-1' }, 'Chat ', h('span', { class: 'conference-id' }, id)),
    h(
      'dl',
      { class: 'facts' },
      fact('Kind', 'Chat'),
      fact('State', chat.state),
      fact('Duration', first ? since(first.timestampSeconds) : 'unknown'),
      customer ? fact('Customer', customer.nickname) : null,
    ),
    h('h4', { id: listId }, `Participants (${participants.length})`),
    h(
      'ul',
      { class: 'participants', 'aria-labelledby': listId },
      participants.map((p) => chatParticipantView(id, p, mayRemoveFromChat(chat, p))),
    ),
    anyRemovable ? removalOptionsView(id) : null,
    h('h4', { id: transcriptId }, 'Transcript'),
    log.length
      ? h(
          'ol',
          {
            class: 'transcript',
            tabindex: '0',
            'aria-labelledby': transcriptId,
            'data-scroll': id,
            'data-focus': `transcript|${id}`,
          },
          log.map(logEntryView),
        )
      : h('p', { class: 'empty' }, 'No messages yet.'),
  );
}

async function fetchLog(chatId) {
  const reply = await gws.get(`/me/chats/${encodeURIComponent(chatId)}/messages`);
  return reply.messages || [];
}

/** A chat the page did not know yet (a notification about it came first). */
async function fetchChat(chatId) {
  try {
    const [{ chat }, log] = await Promise.all([
      gws.get(`/me/chats/${encodeURIComponent(chatId)}`),
      fetchLog(chatId),
    ]);
    applyChat(chat);
    applyMessages(chatId, log, { quiet: true });
    renderChats();
  } catch (error) {
    if (error.signedOut) sessionEnded('Your session has ended. Sign in again.');
    // Otherwise the next full fetch (after a reconnection) brings it.
  }
}

async function removeFromChat(chatId, participant) {
  const key = participantKey('chat', chatId, participant.participantId);
  if (state.pending.has(key)) return;
  const options = chatOptions(chatId);
  const body = { operationName: 'RemoveParticipantFromConference', targetUri: participant.uri };
  const text = options.text.trim();
  // GWS takes treatAs only together with a text.
  if (text) Object.assign(body, { text, treatAs: options.treatAs });
  state.pending.add(key);
  state.refusals.delete(key);
  renderChats();
  try {
    await gws.post(`/me/chats/${encodeURIComponent(chatId)}`, body);
    const entry = state.chats.get(chatId);
    if (entry) {
      const participants = (entry.chat.participants || []).filter(
        (p) => p.participantId !== participant.participantId,
      );
      applyChat({ ...entry.chat, participants });
      setChatOption(chatId, { text: '' });
    }
    // The log's new entries (the message, ParticipantLeft) also come as a notification; fetching
    // them shows them now even if the notifications are down.
    try {
      applyMessages(chatId, await fetchLog(chatId));
    } catch {
      // They come with the notification or the next full fetch.
    }
  } catch (error) {
    if (error.signedOut) return sessionEnded('Your session has ended. Sign in again.');
    if (state.chats.has(chatId)) {
      state.refusals.set(key, error.message);
      announce(`Removing ${participant.nickname} from chat ${chatId} was refused: ${error.message}`);
    }
  } finally {
    state.pending.delete(key);
    renderChats();
  }
}

function renderChats() {
  const container = $('chats');
  rerender(container, () => {
    const entries = [...state.chats.entries()];
    if (!state.loaded) {
      container.replaceChildren(h('p', { class: 'empty' }, 'Loading…'));
    } else if (entries.length === 0) {
      container.replaceChildren(h('p', { class: 'empty' }, 'No chats right now.'));
    } else {
      container.replaceChildren(...entries.map(([id, entry]) => chatView(id, entry)));
    }
  });
}

// --- the whole state -------------------------------------------------------------------------

function syncCalls(calls, quiet) {
  const fetched = new Set(calls.map((call) => call.id));
  for (const [id, entry] of [...state.calls]) {
    if (!fetched.has(id)) applyCall({ ...entry.call, state: 'Released' }, { quiet });
  }
  for (const call of calls) applyCall(call, { quiet });
}

async function refreshCalls() {
  const reply = await gws.get('/me/calls');
  syncCalls(reply.calls || [], false);
  renderCalls();
}

/** Fetches everything the user sees; the notifications take it from there. */
async function refreshAll() {
  const quiet = !state.loaded;
  const [callsReply, chatsReply] = await Promise.all([gws.get('/me/calls'), gws.get('/me/chats')]);
  const chats = chatsReply.chats || [];
  const logs = await Promise.all(
    chats.map((chat) =>
      fetchLog(chat.id).then(
        (log) => [chat.id, log],
        (error) => {
          if (error.signedOut) throw error;
          return [chat.id, []];
        },
      ),
    ),
  );
  syncCalls(callsReply.calls || [], quiet);
  const fetched = new Set(chats.map((chat) => chat.id));
  for (const [id, entry] of [...state.chats]) {
    if (!fetched.has(id)) applyChat({ ...entry.chat, state: 'Completed' }, { quiet });
  }
  for (const chat of chats) applyChat(chat, { quiet });
  for (const [id, log] of logs) applyMessages(id, log, { quiet });
  state.loaded = true;
  renderCalls();
  renderChats();
}

function onNotification(_channel, data) {
  if (!state.user || !data || typeof data !== 'object') return;
  if (data.call && typeof data.call === 'object') {
    applyCall(data.call);
    renderCalls();
  } else if (data.chat && typeof data.chat === 'object') {
    const known = state.chats.has(data.chat.id);
    applyChat(data.chat);
    renderChats();
    if (!known && state.chats.has(data.chat.id)) fetchChat(data.chat.id);
  } else if (Array.isArray(data.messages)) {
    const chatId = lastSegment(data.chatUri);
    if (applyMessages(chatId, data.messages)) renderChats();
    else fetchChat(chatId);
  }
}

function onLiveStatus(status, detail) {
  const live = $('live-status');
  switch (status) {
    case 'connecting':
      live.textContent = 'Live updates: connecting…';
      break;
    case 'connected':
      live.textContent = 'Live updates: on';
      $('banner').hidden = true;
      if (state.offline) announce('Connection restored; the view is up to date.');
      state.offline = false;
      break;
    case 'disconnected':
      live.textContent = 'Live updates: reconnecting…';
      $('banner').hidden = false;
      state.offline = true;
      break;
    case 'ended':
      sessionEnded(`Your session has ended (${detail}). Sign in again.`);
      break;
    default:
      break;
  }
}

async function syncAfterSubscribe() {
  try {
    await refreshAll();
  } catch (error) {
    if (error.signedOut) throw new SessionEnded(error.message);
    throw error;
  }
}

// --- signing in and out ----------------------------------------------------------------------

function showSections(signedIn) {
  $('sign-in-section').hidden = signedIn;
  $('account').hidden = !signedIn;
  for (const id of ['calls-section', 'chats-section', 'activity-section']) $(id).hidden = !signedIn;
  $('monitor-section').hidden = !(signedIn && isSupervisor());
}

function resetState() {
  state.loaded = false;
  state.calls.clear();
  state.chats.clear();
  state.refusals.clear();
  state.pending.clear();
  state.chatOptions.clear();
  state.offline = false;
  $('banner').hidden = true;
  $('activity').replaceChildren();
  $('monitor-status').textContent = '';
  state.agents.clear();
  $('monitor-agent').replaceChildren(h('option', { value: '' }, 'Loading the agents…'));
  $('monitor-agent').disabled = false;
  $('monitor-agent-hint').classList.remove('error');
  $('monitor-agent-hint').textContent = 'Agents with a phone device.';
  $('monitor-device').value = '';
}

function begin(user) {
  state.user = user;
  resetState();
  sessionStorage.setItem(SIGNED_IN_KEY, '1');
  $('account-name').textContent = user.userName;
  const roles = (user.roles || []).map((role) => ROLE_NAMES[role] || role);
  $('account-roles').textContent = roles.length ? `(${roles.join(', ')})` : '';
  showSections(true);
  renderCalls();
  renderChats();
  if (isSupervisor()) loadAgents();
  $('calls-heading').focus();
  notifications = new Bayeux({
    url: NOTIFICATIONS_URL,
    channels: CHANNELS,
    headers: () => (gws.csrf ? { 'X-CSRF-TOKEN': gws.csrf } : {}),
    onMessage: onNotification,
    onSubscribed: syncAfterSubscribe,
    onStatus: onLiveStatus,
  });
  notifications.start();
}

function showSignIn(message = '') {
  state.user = null;
  resetState();
  sessionStorage.removeItem(SIGNED_IN_KEY);
  showSections(false);
  $('sign-in-error').textContent = message;
  $('password').value = '';
  $('username').focus();
}

function sessionEnded(message) {
  const stopping = notifications;
  notifications = null;
  if (stopping) stopping.stop();
  showSignIn(message);
}

async function signOut() {
  const stopping = notifications;
  notifications = null;
  if (stopping) await stopping.stop();
  try {
    // Only the server can drop the HttpOnly session cookie.
    await fetch('/console/sign-out', {
      method: 'POST',
      headers: { 'X-CSRF-TOKEN': gws.csrf || 'none' },
      credentials: 'same-origin',
    });
  } catch {
    // The cookie stays until it expires; this page forgets the session anyway.
  }
  gws.csrf = null;
  showSignIn('');
}

async function onSignIn(event) {
  event.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  const error = $('sign-in-error');
  if (!username || !password) {
    error.textContent = 'Enter your user name and password.';
    $(username ? 'password' : 'username').focus();
    return;
  }
  const button = $('sign-in-button');
  button.disabled = true;
  error.textContent = '';
  try {
    begin(await gws.signIn(username, password));
    $('password').value = '';
  } catch (failure) {
    error.textContent = failure.signedOut
      ? `Sign-in refused (${failure.message}): check the user name and password.`
      : `Sign-in failed: ${failure.message}`;
    $('password').value = '';
    $('password').focus();
  } finally {
    button.disabled = false;
  }
}

async function resume() {
  try {
    begin(await gws.resume());
  } catch {
    showSignIn('');
  }
}

// --- supervisor monitoring -------------------------------------------------------------------

function recentDevices() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_DEVICES_KEY) || '[]');
    return Array.isArray(list) ? list.filter((item) => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

function rememberDevice(device) {
  const list = [device, ...recentDevices().filter((item) => item !== device)];
  localStorage.setItem(RECENT_DEVICES_KEY, JSON.stringify(list.slice(0, MAX_RECENT_DEVICES)));
  renderRecentDevices();
}

function renderRecentDevices() {
  $('recent-devices').replaceChildren(...recentDevices().map((value) => h('option', { value })));
}

/** What the agent list shows for a user: "Ann Smith (ann, line 15000)" or "ann (line 15000)". */
function agentLabel(user) {
  const name = [user.firstName, user.lastName].filter((part) => typeof part === 'string' && part).join(' ');
  const line = user.phoneNumber ? `line ${user.phoneNumber}` : '';
  if (name) return `${name} (${[user.userName, line].filter(Boolean).join(', ')})`;
  return line ? `${user.userName} (${line})` : user.userName;
}

/**
 * Fills the agent list from `GET /api/v2/users` (supervisors and admins may read it): every
 * other user with the agent role and a device, by label; the option's value is the device's URI,
 * ListenIn's `targetDeviceUri`. When the list cannot be read, the typed device still works.
 */
async function loadAgents() {
  const select = $('monitor-agent');
  const hint = $('monitor-agent-hint');
  const forUser = state.user;
  let users;
  try {
    // A real GWS expands devices only when asked; Confer always includes them.
    users = (await gws.get('/users?subresources=devices')).users || [];
  } catch (error) {
    if (state.user !== forUser) return;
    state.agents.clear();
    select.replaceChildren(h('option', { value: '' }, 'No list available'));
    select.disabled = true;
    hint.classList.add('error');
    hint.textContent = `The agent list could not be loaded (${error.message}); type the agent's device below.`;
    return;
  }
  if (state.user !== forUser) return;
  const agents = users
    .filter((user) => user && user.id !== state.user.id && (user.roles || []).includes('ROLE_AGENT'))
    .map((user) => {
      const device = (user.devices || []).find((item) => item && (item.uri || item.id));
      return device ? { value: device.uri || device.id, label: agentLabel(user) } : null;
    })
    .filter(Boolean)
    .sort((a, b) => a.label.localeCompare(b.label));
  state.agents = new Map(agents.map(({ value, label }) => [value, label]));
  const previous = select.value;
  select.replaceChildren(
    h('option', { value: '' }, agents.length ? 'Choose an agent…' : 'No agents with a device'),
    ...agents.map(({ value, label }) => h('option', { value }, label)),
  );
  if (state.agents.has(previous)) select.value = previous;
  select.disabled = agents.length === 0;
  hint.classList.remove('error');
  hint.textContent = agents.length
    ? `${agents.length} ${agents.length === 1 ? 'agent' : 'agents'} with a phone device.`
    : 'No agent has a phone device; type a device below.';
}

/** The chosen agent's device, else the typed one; and how to name it to the user. */
function monitoringTarget() {
  const picked = $('monitor-agent').value;
  if (picked) return { target: picked, name: state.agents.get(picked) || picked };
  const typed = $('monitor-device').value.trim();
  return { target: typed, name: typed, typed: true };
}

function ownDevice() {
  const devices = (state.user && state.user.devices) || [];
  return devices.length ? devices[0].id : null;
}

async function monitoringOperation(body, done) {
  const status = $('monitor-status');
  const device = ownDevice();
  if (!device) {
    status.classList.add('error');
    status.textContent = 'You have no device to monitor from.';
    return false;
  }
  status.classList.remove('error');
  status.textContent = 'Asking the server…';
  try {
    await gws.post(`/me/devices/${encodeURIComponent(device)}`, body);
    status.textContent = done;
    announce(done);
  } catch (error) {
    if (error.signedOut) {
      sessionEnded('Your session has ended. Sign in again.');
      return false;
    }
    status.classList.add('error');
    status.textContent = `Refused: ${error.message}`;
    return false;
  }
  try {
    await refreshCalls();
  } catch {
    // The notification of the change brings the call as well.
  }
  return true;
}

async function onMonitor(event) {
  event.preventDefault();
  const { target, name, typed } = monitoringTarget();
  if (!target) {
    const status = $('monitor-status');
    status.classList.add('error');
    status.textContent = "Choose an agent, or type the agent's device id or URI.";
    $($('monitor-agent').disabled ? 'monitor-device' : 'monitor-agent').focus();
    return;
  }
  const started = await monitoringOperation(
    {
      operationName: 'ListenIn',
      targetDeviceUri: target,
      supervisorMonitoringScope: $('monitor-scope').value,
    },
    `Listening in on ${name}.`,
  );
  if (started && typed) rememberDevice(target);
}

async function onStopMonitoring() {
  const { target } = monitoringTarget();
  const body = { operationName: 'CancelSupervisorMonitoring' };
  if (target) body.targetDeviceUri = target;
  await monitoringOperation(body, 'Monitoring stopped.');
}

// --- start -----------------------------------------------------------------------------------

$('sign-in').addEventListener('submit', onSignIn);
$('sign-out').addEventListener('click', signOut);
$('monitor').addEventListener('submit', onMonitor);
$('monitor-stop').addEventListener('click', onStopMonitoring);
// One target at a time: picking an agent clears the typed device, and typing one clears the pick.
$('monitor-agent').addEventListener('change', () => {
  if ($('monitor-agent').value) $('monitor-device').value = '';
});
$('monitor-device').addEventListener('input', () => {
  if ($('monitor-device').value.trim()) $('monitor-agent').value = '';
});
setInterval(tick, 1000);
renderRecentDevices();
if (sessionStorage.getItem(SIGNED_IN_KEY)) resume();
else showSignIn('');
