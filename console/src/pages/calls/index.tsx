// Every page under /calls: the list (/calls?campaignId=…) and a call (/calls/:callId, the id
// URL-encoded). Lazy-loaded by the console's shell.
import { useRoute } from '../../lib/router.js';
import { CallDetailPage } from './CallDetail.js';
import { CallList } from './CallList.js';
import '../campaigns/campaigns.css';

export default function CallsPage() {
  const path = useRoute().replace(/\/+$/, '');
  const m = /^\/calls\/([^/]+)$/.exec(path);
  if (m?.[1]) {
    const callId = decodeURIComponent(m[1]);
    return <CallDetailPage key={callId} callId={callId} />;
  }
  return <CallList />;
}
