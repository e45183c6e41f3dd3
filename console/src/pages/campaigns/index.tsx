// Every page under /campaigns: the list, the wizard (/campaigns/new) and a campaign's dashboard
// (/campaigns/:id). Lazy-loaded by the console's shell.
import { useRoute } from '../../lib/router.js';
import { CampaignList } from './CampaignList.js';
import { Dashboard } from './Dashboard.js';
import { Wizard } from './Wizard.js';
import './campaigns.css';

export default function CampaignsPage() {
  const path = useRoute().replace(/\/+$/, '');
  if (path === '/campaigns/new') return <Wizard />;
  const m = /^\/campaigns\/([^/]+)$/.exec(path);
  if (m?.[1]) {
    const id = decodeURIComponent(m[1]);
    // A new page per campaign: its stream and samples start over.
    return <Dashboard key={id} id={id} />;
  }
  return <CampaignList />;
}
