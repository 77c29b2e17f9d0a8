// The fan-out peer: the smallest broadcast server a team might write with Node.js and the
// npm `ws` package instead of slashd — rooms in memory, nothing stored, no auth, no limits.
// It speaks just enough of slashd's protocol for `bench fanout --peer node-ws` to drive it
// with the same client: `ready` on connect, `join` → `joined`, `message` → `ack` to the
// poster and the message, serialized once, to every connection in the room.
//
//   node ws-broadcast.js        prints "listening <port>" on stdout, serves until stdin closes
'use strict';

const { WebSocketServer } = require('ws');

const rooms = new Map(); // session id → { seq, members: Set<WebSocket> }
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });

wss.on('connection', (socket) => {
  socket.send('{"type":"ready"}');
  const joined = new Set();
  socket.on('message', (data) => {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      socket.send('{"type":"error","code":"bad_frame"}');
      return;
    }
    const session = String(frame.session_id ?? '');
    if (frame.type === 'join') {
      let room = rooms.get(session);
      if (!room) {
        room = { seq: 0, members: new Set() };
        rooms.set(session, room);
      }
      room.members.add(socket);
      joined.add(room);
      socket.send(JSON.stringify({ type: 'joined', session_id: session }));
    } else if (frame.type === 'message') {
      const room = rooms.get(session);
      if (!room || !room.members.has(socket)) {
        socket.send('{"type":"error","code":"not_joined"}');
        return;
      }
      room.seq += 1;
      const id = `${session}:${room.seq}`;
      socket.send(JSON.stringify({ type: 'ack', id: frame.id ?? null, message_id: id, seq: room.seq }));
      const event = JSON.stringify({
        type: 'message',
        session_id: session,
        message: { id, seq: room.seq, role: 'user', content: String(frame.content ?? ''), metadata: {} },
      });
      for (const member of room.members) member.send(event);
    }
  });
  socket.on('close', () => {
    for (const room of joined) room.members.delete(socket);
  });
});

wss.on('listening', () => console.log(`listening ${wss.address().port}`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
